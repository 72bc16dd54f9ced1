"""Load and faults for the tests that run real server processes (faults, deadlines, PgBouncer):
a write load that records every outcome, writes at once, a TCP proxy that stalls, and the
checks they share.

Not a test module; the tests import it (``tests/`` is on ``sys.path`` under pytest)."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
from sqlalchemy import create_engine, select

from servers import Outcome, run_threads, start_server, timed
from support import key_url
from webapp.models import TaskState

DEADLINE = 1.5  # seconds: short, so each deadline test takes a few seconds
WRITES_AT_ONCE = 6


def deadline_server(database_url: str, workdir, **settings):
    """A server whose deadlines are ``DEADLINE`` (the admin's twice that), plus ``settings``."""
    # As many threads per worker as writes at once: on a busy machine every connection may land
    # in one worker, and a write queued behind stalled ones for a thread would wait out their
    # deadline before its own, which measures the thread pool, not the deadline.
    return start_server(database_url, workdir, threads=WRITES_AT_ONCE, db_statement_timeout_seconds=DEADLINE,
                        db_admin_statement_timeout_seconds=DEADLINE * 2, health_timeout_seconds=DEADLINE, **settings)


def writes(base_url: str, ti: str, headers: dict, prefix: str, count: int = WRITES_AT_ONCE) -> list[Outcome]:
    """``count`` writes of distinct keys at once, one client each."""
    def work(n: int, start: threading.Event) -> list[Outcome]:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            start.wait()
            key = f"{prefix}-{n}"
            return [timed("PUT", key, lambda: client.put(key_url(ti, key), json={"value": n}))]
    return run_threads(count, work)


def stored_keys(database_url: str, prefix: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(select(TaskState.key).where(TaskState.key.startswith(prefix))).scalars())
    finally:
        engine.dispose()


def assert_refused_within_the_deadline(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert outcome.status == 503, (outcome.status, outcome.body)
        assert json.loads(outcome.body)["detail"]["reason"] == "database_unavailable"
        assert outcome.latency <= DEADLINE + 1.5, outcome.latency


def reason(outcome: Outcome) -> str | None:
    try:
        return json.loads(outcome.body)["detail"]["reason"]
    except (ValueError, KeyError, TypeError):
        return None


def describe(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.what} {o.key} {o.status} {o.latency:.2f}s {o.body[:120]}" for o in outcomes[:20])


class Load:
    """Threads writing distinct keys through keep-alive clients until stopped (or a hard limit)."""

    def __init__(self, base_url: str, ti: str, token_headers: dict, threads: int = 8, limit: float = 30):
        self.base_url, self.ti, self.headers = base_url, ti, token_headers
        self.threads, self.limit = threads, limit
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self._runner: threading.Thread | None = None

    def _work(self, n: int, start: threading.Event) -> list[Outcome]:
        start.wait()
        deadline = time.monotonic() + self.limit
        done = []
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            i = 0
            while not self.stop.is_set() and time.monotonic() < deadline:
                key = f"t{n}/w{i}"
                done.append(timed("put", key, lambda: client.put(
                    key_url(self.ti, key), json={"value": [n, i], "expires_at": None})))
                i += 1
        return done

    def __enter__(self) -> Load:
        def run():
            self.outcomes = run_threads(self.threads, self._work)
        self._runner = threading.Thread(target=run, daemon=True)
        self._runner.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self._runner.join(timeout=60)
        assert not self._runner.is_alive(), "the load did not stop"

    def acknowledged(self) -> set[str]:
        return {o.key for o in self.outcomes if o.status == 204}


class StallingProxy:
    """A TCP proxy to the database that can stop forwarding: it keeps every connection open
    and keeps reading, but passes nothing on in either direction until ``resume``."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.forwarding.is_set():
                    sink.sendall(data)  # while stalled, the bytes are swallowed: the path lost them
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stall(self) -> None:
        self.forwarding.clear()

    def resume(self) -> None:
        self.forwarding.set()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
