"""A private PgBouncer in transaction pooling mode, in front of the test run's PostgreSQL: its own
config file, port and log in a folder of the test's, started and stopped by the test.

Not a test module; conftest's ``pgbouncer`` fixture starts it. PgBouncer refuses to run as root, so
as root it switches to the ``postgres`` user (``-u``) after reading its files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from support import free_port


class PgBouncer:
    def __init__(self, database_url: str, folder: Path, *, pool_size: int = 10):
        url = make_url(database_url)
        self.database_url = database_url
        self.folder = folder
        self.port = free_port()
        self.user = url.username or "postgres"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "users.txt").write_text(f'"{self.user}" ""\n')
        # "*": any database name is passed through, so a throw-away database of a test or a
        # benchmark needs no entry of its own.
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={url.host or '127.0.0.1'} port={url.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
            "pool_mode = transaction\n"
            # After a failed login to a restarting server PgBouncer refuses every client for
            # this long (15 s by default) before it tries again.
            "server_login_retry = 1\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
        )
        self.log_path = folder / "pgbouncer.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The test database's URL with PgBouncer's address in place of PostgreSQL's."""
        return make_url(self.database_url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)

    @staticmethod
    def executable() -> str:
        return shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

    @classmethod
    def installed(cls) -> bool:
        return os.access(cls.executable(), os.X_OK)

    def start(self, ready_timeout: float = 10) -> PgBouncer:
        executable = self.executable()
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([executable, *as_user, str(self.folder / "pgbouncer.ini")],
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pgbouncer did not start:\n" + self.log())
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
