"""Real server processes for the scale-out, reliability and fault tests: ``python -m webapp
serve`` (granian by default, or the server named) on a given database, started and stopped by the test.

Not a test module; the tests and conftest import it (``tests/`` is on ``sys.path`` under pytest)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support import SECRET_KEY, free_port


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False, default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The worker processes: the children of the serve process."""
        return children_of(self.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its workers too: none may outlive the test
                self.process.wait(timeout=5)


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(found))


def server_env(database_url: str, instance_path: Path, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKSTORE_")}
    env.update({
        "TASKSTORE_DATABASE_URL": database_url,
        "TASKSTORE_SECRET_KEY": SECRET_KEY,
        "TASKSTORE_INSTANCE_PATH": str(instance_path),
    })
    env.update({f"TASKSTORE_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def start_server(database_url: str, workdir: Path, *, workers: int = 2, threads: int = 4,
                 ready_timeout: float = 30, server: str | None = None, **settings) -> Server:
    """Start ``taskstore serve`` (``--server server`` if given) on a free port and wait until
    ``/health`` answers 200 and every worker process is up."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(database_url, workdir, **settings)
    log_path = workdir / f"server-{port}.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--port", str(port),
             "--workers", str(workers), "--threads", str(threads), *(["--server", server] if server else [])],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path, env)
    deadline = time.monotonic() + ready_timeout
    while True:
        try:
            if httpx.get(server.base_url + "/health", timeout=1).status_code == 200 \
                    and len(server.worker_pids()) >= workers:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("server did not start:\n" + server.log())
        time.sleep(0.1)


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Outcome:
    """One request as a client saw it: monotonic times before sending and after the answer."""

    what: str
    key: str | None
    sent: float
    answered: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    body: str = ""

    @property
    def latency(self) -> float:
        return self.answered - self.sent


def timed(what: str, key: str | None, send: Callable[[], httpx.Response]) -> Outcome:
    sent = time.monotonic()
    try:
        response = send()
    except httpx.TransportError as exc:
        return Outcome(what, key, sent, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
    return Outcome(what, key, sent, time.monotonic(), response.status_code,
                   "" if response.status_code < 300 else response.text[:300])


def run_threads(count: int, work: Callable[[int, threading.Event], list]) -> list:
    """``count`` threads running ``work(n, start)`` released together; their results, flattened."""
    start = threading.Event()
    results: list[list] = [[] for _ in range(count)]
    errors: list[BaseException] = []

    def body(n: int) -> None:
        try:
            results[n] = work(n, start)
        except BaseException as exc:  # surfaced below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads), "a load thread hung"
    return [item for items in results for item in items]
