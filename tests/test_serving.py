"""``taskstore serve`` under each HTTP server it offers (granian, the default, and gunicorn):
both answer the same app, and SIGTERM lets a request in flight finish before the server exits.

A worker killed and replaced under either server is tests/test_faults.py's; metrics across the
worker processes are tests/test_metrics.py's (under the default server)."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import httpx
import pytest

from servers import start_server
from support import key_url

SERVERS = ["granian", "gunicorn"]


@pytest.mark.parametrize("server_name", SERVERS)
def test_each_server_answers_the_worker_api_and_says_which_it_is(migrated_database, tmp_path, ti_id, worker_auth,
                                                                  server_name):
    server = start_server(migrated_database, tmp_path / "server", server=server_name)
    try:
        with httpx.Client(base_url=server.base_url, headers=worker_auth(ti_id), timeout=10) as http:
            assert http.put(key_url(ti_id, "job"), json={"value": "j-1"}).status_code == 204
            assert http.get(key_url(ti_id, "job")).json() == {"value": "j-1"}
        assert len(server.worker_pids()) == 2
    finally:
        server.stop()
    assert server.process.returncode == 0, server.log()
    assert server_name in server.log().lower()


def test_an_unknown_server_is_refused_by_name():
    from click.testing import CliRunner

    from webapp.cli import main

    result = CliRunner().invoke(main, ["serve", "--server", "waitress"])
    assert result.exit_code == 2
    assert "--server" in result.output and "granian" in result.output and "gunicorn" in result.output


@pytest.mark.parametrize("server_name", SERVERS)
def test_sigterm_lets_a_write_in_flight_finish_then_the_server_exits(migrated_database, tmp_path, ti_id,
                                                                      worker_auth, server_name):
    """A write waits on SQLite's lock (held here) when SIGTERM comes; the lock is let go a second
    later: the write is answered and stored, and only then does the server exit, with status 0."""
    if not migrated_database.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock to keep a request in flight (the servers behave alike on any database)")
    server = start_server(migrated_database, tmp_path / "server", server=server_name,
                          sqlite_busy_timeout_ms=20_000)
    database_file = migrated_database.removeprefix("sqlite:///")
    blocker = sqlite3.connect(database_file, timeout=5, isolation_level=None)
    answers: list[httpx.Response | Exception] = []

    def write() -> None:
        try:
            answers.append(httpx.put(server.base_url + key_url(ti_id, "in-flight"), json={"value": 1},
                                     headers=worker_auth(ti_id), timeout=30))
        except httpx.HTTPError as exc:
            answers.append(exc)

    try:
        blocker.execute("BEGIN IMMEDIATE")
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1.0)  # the PUT is now waiting for the lock inside a worker
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert server.process.poll() is None, "the server exited with a request in flight"
        blocker.execute("COMMIT")
        writer.join(timeout=20)
        server.process.wait(timeout=20)
    finally:
        blocker.close()
        server.stop()
    assert [getattr(a, "status_code", a) for a in answers] == [204], server.log()
    assert server.process.returncode == 0, server.log()
    stored = sqlite3.connect(database_file).execute("SELECT count(*) FROM task_state WHERE key = 'in-flight'")
    assert stored.fetchone() == (1,)
