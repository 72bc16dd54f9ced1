"""Deadlines on every database call: a database that stalls costs a caller seconds, not minutes.

Two deadlines, both settings: worker calls (and ``/health``) get the short one; the UI, the
admin API and the CLI (listings, edits, ``clean`` batches), which run on the ORM session, get
the longer one. Each database enforces them its own way:

- PostgreSQL: ``statement_timeout`` and ``lock_timeout`` as connection defaults (the worker's),
  raised for the length of a session's transaction with ``set_config(..., true)``. TCP
  keepalives and ``tcp_user_timeout`` notice a host that vanished. A server that stops
  answering without going away (frozen, or a network path that swallows packets while the
  kernel still acknowledges them) cannot enforce its own timeout, so a watchdog thread closes
  the socket of any statement still running one second past its deadline.
- PostgreSQL behind a transaction pooler (``db_pooler = "transaction"``, PgBouncer in
  ``pool_mode = transaction``): each transaction may run on another server connection, so
  there are no connection defaults to rely on (PgBouncer refuses startup ``options``, and a
  session ``SET`` would stay behind for the next client). A session's transaction still sets
  its deadline with ``set_config(..., true)``; the worker's one-statement calls run in
  autocommit, outside any transaction, so the watchdog cancels a statement at its deadline (a
  cancel request, which PgBouncer forwards to the server connection running it) and closes the
  socket a second later if that did not end it.
- MariaDB/MySQL: ``max_statement_time`` and ``innodb_lock_wait_timeout`` as session defaults,
  raised for a session's transaction and reset when the connection returns to the pool; the
  driver's socket read timeout notices a silent server.
- SQLite: its busy timeout, as before.

A call past its deadline answers 503 with ``Retry-After`` (the database-unavailable path),
its transaction rolls back, and its connection goes back to the pool healthy, or is replaced
when the watchdog had to close it."""

from __future__ import annotations

import itertools
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .config import Settings

RAISED = "taskstore.deadline_raised"  # connection info: a session raised this connection's deadline
KILLED = "taskstore.killed"  # connection record info: the watchdog closed this connection's socket
WATCHED = "taskstore.watched"  # connection info: the watchdog's token for the running statement
# The watchdog acts this long after a statement's own deadline: the server's timeout, which
# leaves the connection usable, normally fires first.
WATCHDOG_GRACE = 1.0
WATCHDOG_TICK = 0.25

# A shorter deadline for what runs inside ``deadline(seconds)`` (the health check).
_override: ContextVar[float | None] = ContextVar("taskstore_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Run the enclosed statements under a deadline of their own (PostgreSQL and MariaDB)."""
    token = _override.set(seconds)
    try:
        yield
    finally:
        _override.reset(token)


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def connect_args(settings: Settings, backend: str) -> dict[str, Any]:
    """What each new connection starts with: the worker's deadline, and keepalives."""
    worker = settings.db_statement_timeout_seconds
    # Opening a connection is part of the call that needs it: no longer than the deadline either.
    connect_timeout = max(1, min(settings.db_connect_timeout_seconds, math.ceil(worker)))
    if backend == "postgresql":
        defaults = {} if settings.db_pooler == "transaction" else {
            "options": f"-c statement_timeout={_milliseconds(worker)} -c lock_timeout={_milliseconds(worker)}"}
        return {
            "connect_timeout": connect_timeout,
            **defaults,
            # A vanished host: unacknowledged data fails after tcp_user_timeout, an idle link
            # after keepalives_idle + keepalives_count * keepalives_interval, both about the deadline.
            "keepalives": 1,
            "keepalives_idle": 1,
            "keepalives_interval": 1,
            "keepalives_count": max(1, math.ceil(worker)),
            "tcp_user_timeout": _milliseconds(worker),
        }
    if backend in ("mysql", "mariadb"):
        return {
            "connect_timeout": connect_timeout,
            "charset": "utf8mb4",
            "read_timeout": worker + WATCHDOG_GRACE,
            "write_timeout": worker + WATCHDOG_GRACE,
            "init_command": _mysql_deadline(worker),
        }
    return {}


def _mysql_deadline(seconds: float) -> str:
    # innodb_lock_wait_timeout takes whole seconds (at least 1); max_statement_time fractions.
    return (f"SET SESSION max_statement_time={seconds:g}, "
            f"innodb_lock_wait_timeout={max(1, math.ceil(seconds))}")


# Each engine's dialect and session deadline, for the one session listener below.
_ENGINES: weakref.WeakKeyDictionary[Engine, tuple[str, float]] = weakref.WeakKeyDictionary()


@event.listens_for(Session, "after_begin")
def _raise_for_session(_session, _transaction, connection) -> None:
    """A session's transaction (UI, admin API, CLI) runs under the longer deadline."""
    known = _ENGINES.get(connection.engine)
    if known is None or connection.info.get(RAISED):
        return
    name, admin = known
    connection.info[RAISED] = True
    if name == "postgresql":
        connection.exec_driver_sql(
            f"SELECT set_config('statement_timeout', '{_milliseconds(admin)}', true), "
            f"set_config('lock_timeout', '{_milliseconds(admin)}', true)")
    else:
        connection.exec_driver_sql(_mysql_deadline(admin))
        _set_mysql_socket_timeout(connection.connection.dbapi_connection, admin + WATCHDOG_GRACE)


def install(engine: Engine, settings: Settings) -> None:
    """Deadlines for an engine: the session's raised one, the reset at checkin, and (PostgreSQL)
    the watchdog."""
    name = engine.dialect.name
    if name == "sqlite":
        return
    worker, admin = settings.db_statement_timeout_seconds, settings.db_admin_statement_timeout_seconds
    _ENGINES[engine] = (name, admin)

    @event.listens_for(engine, "checkin")
    def _back_to_worker_deadline(dbapi_connection, record) -> None:
        # PostgreSQL's set_config(..., true) ended with its transaction; MariaDB's lasts.
        if record.info.pop(RAISED, False) and name != "postgresql" and dbapi_connection is not None:
            cursor = dbapi_connection.cursor()
            cursor.execute(_mysql_deadline(worker))
            cursor.close()
            _set_mysql_socket_timeout(dbapi_connection, worker + WATCHDOG_GRACE)

    @event.listens_for(engine, "checkout")
    def _refuse_killed(_dbapi_connection, record, _proxy) -> None:
        if record.info.pop(KILLED, False):
            raise exc.DisconnectionError("the watchdog closed this connection")  # the pool replaces it

    if name == "postgresql":
        _watch_postgresql(engine, worker, admin, cancel_at_deadline=settings.db_pooler == "transaction")
    else:
        @event.listens_for(engine, "before_cursor_execute")
        def _shorter_socket_timeout(connection, *_args) -> None:
            seconds = _override.get()
            if seconds is not None:  # the health check's own deadline; reset at checkin
                connection.info[RAISED] = True
                _set_mysql_socket_timeout(connection.connection.dbapi_connection, seconds)


def _set_mysql_socket_timeout(dbapi_connection, seconds: float) -> None:
    # PyMySQL applies these to its socket before each read and write.
    dbapi_connection._read_timeout = seconds
    dbapi_connection._write_timeout = seconds


def _watch_postgresql(engine: Engine, worker: float, admin: float, *, cancel_at_deadline: bool) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _watch(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        info = connection.info  # the pooled connection's own, kept across checkouts
        seconds = _override.get() or (admin if info.get(RAISED) else worker)
        dbapi_connection = connection.connection.dbapi_connection
        tokens = [WATCHDOG.watch(seconds + WATCHDOG_GRACE, lambda: _close_socket(dbapi_connection, info))]
        if cancel_at_deadline:
            tokens.append(WATCHDOG.watch(seconds, lambda: _cancel(dbapi_connection)))
        info[WATCHED] = tokens

    @event.listens_for(engine, "after_cursor_execute")
    def _done(connection, *_args) -> None:
        WATCHDOG.release(*connection.info.pop(WATCHED, ()))

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:
        if context.connection is not None:
            WATCHDOG.release(*context.connection.info.pop(WATCHED, ()))


def _cancel(dbapi_connection) -> None:
    """Ask the server to cancel the running statement: it fails with "canceling statement"
    (answered 503) and the connection stays usable. On a thread of its own: reaching a server
    that stopped answering takes up to the timeout, and the watchdog must keep its schedule."""
    def send() -> None:
        try:
            # Only while the statement still runs: a cancel reaching the connection's next
            # statement would fail a call that did nothing wrong.
            if dbapi_connection.info.transaction_status.name == "ACTIVE":
                dbapi_connection.cancel_safe(timeout=WATCHDOG_GRACE)
        except Exception:  # noqa: BLE001 - unreachable or already closed: the socket close follows
            pass

    threading.Thread(target=send, name="taskstore-db-cancel", daemon=True).start()


def _close_socket(dbapi_connection, info: dict) -> None:
    """Shut the connection's socket: the statement waiting on it fails at once (a disconnect,
    answered 503) and the pool replaces the connection at its next checkout."""
    info[KILLED] = True
    try:
        with socket.socket(fileno=os.dup(dbapi_connection.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass  # already closed


class Watchdog:
    """One thread per process that acts on statements past their deadline. Registering and
    releasing a statement is a dictionary operation under a lock; the thread looks at what is
    in flight every quarter second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, Callable[[], None]]] = {}
        self._tokens = itertools.count()
        self._owner_pid: int | None = None

    def watch(self, seconds: float, act: Callable[[], None]) -> int:
        token = next(self._tokens)
        with self._lock:
            if self._owner_pid != os.getpid():  # first use in this process (gunicorn forks)
                self._owner_pid = os.getpid()
                self._watched.clear()
                threading.Thread(target=self._run, name="taskstore-db-watchdog", daemon=True).start()
            self._watched[token] = (time.monotonic() + seconds, act)
        return token

    def release(self, *tokens: int) -> None:
        if tokens:
            with self._lock:
                for token in tokens:
                    self._watched.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(WATCHDOG_TICK)
            now = time.monotonic()
            with self._lock:  # acting under the lock: a statement that finishes meanwhile waits for it
                for token, (due, act) in list(self._watched.items()):
                    if due <= now:
                        del self._watched[token]
                        act()


WATCHDOG = Watchdog()
