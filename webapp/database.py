"""Engine settings per database, chosen so that a database that is down or locked gives a
quick error (answered 503) rather than a hang."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from . import deadlines
from .config import Settings
from .errors import DatabaseUnavailable


def engine_options(settings: Settings, url: str) -> dict[str, Any]:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # The busy timeout is set per connection below; pysqlite's own timeout would wait too.
        return {"connect_args": {"timeout": settings.sqlite_busy_timeout_ms / 1000}}
    options: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        # Servers drop idle connections (MariaDB's wait_timeout); replace them before that.
        "pool_recycle": 1800,
    }
    options["connect_args"] = deadlines.connect_args(settings, backend)
    if backend == "postgresql" and settings.db_pooler == "transaction":
        # psycopg prepares a statement on the server after its fifth run and then only names it;
        # behind a transaction pooler the next run lands on a server connection that never saw
        # it ("prepared statement "_pg3_0" does not exist", or "already exists" where another
        # client prepared the same name).
        options["connect_args"]["prepare_threshold"] = None
    if backend in ("mysql", "mariadb"):
        # Fewer gap locks than REPEATABLE READ: racing upserts deadlock less.
        options["isolation_level"] = "READ COMMITTED"
    return options


def configure_engine(engine: Engine, settings: Settings) -> None:
    deadlines.install(engine, settings)
    if engine.dialect.name != "sqlite":
        return
    _create_private(engine.url.database)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        # WAL lets readers work while one writer writes. synchronous=NORMAL is durable across
        # process crashes in WAL mode (an OS crash or power loss can lose the last commits);
        # FULL syncs the log on every commit and loses nothing acknowledged.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.close()


def _create_private(database: str | None) -> None:
    """A SQLite file this process creates is readable by its owner only (0600): it holds every
    key, password hash and session. SQLite gives its -wal and -shm files the same mode."""
    if not database or database == ":memory:" or database.startswith("file:") or os.path.exists(database):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process made it first
    except OSError:
        pass  # a folder that does not exist: SQLite's own error at first use says so


WRITER_QUEUE = "taskstore.sqlite_writer_queue"  # its key in app.extensions


class SQLiteWriterQueue:
    """Writers to one SQLite file take turns through a lock the kernel hands over at once.

    Without it they meet in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... ms between
    tries: with 8 concurrent worker PUTs a third of the time went to those sleeps (1,367 req/s
    at 68 % CPU, bench/RESULTS.md). A thread lock orders the threads of one process, a
    ``flock`` on a file beside the database the processes; the kernel drops the ``flock`` of a
    process that dies. SQLite's own locking still guards against every other writer."""

    def __init__(self, database_path: str, timeout_seconds: float):
        self.lock_path = database_path + ".writers"
        self.timeout_seconds = timeout_seconds
        self._threads = threading.Lock()
        self._file: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own

    def _fd(self) -> int:
        if self._file is None or self._file[0] != os.getpid():
            try:
                self._file = (os.getpid(), os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as exc:  # the database's folder is gone or read-only: so is the database
                raise DatabaseUnavailable(f"Cannot open {self.lock_path}: {exc.strerror}") from None
        return self._file[1]

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self._threads.acquire(timeout=self.timeout_seconds):
            raise DatabaseUnavailable("SQLite is busy: writers are queued beyond sqlite_busy_timeout_ms")
        try:
            fd = self._fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def writer_queue(engine: Engine, settings: Settings) -> SQLiteWriterQueue | None:
    """The queue for a file-backed SQLite database; None for servers and in-memory SQLite."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SQLiteWriterQueue(os.path.abspath(database), settings.sqlite_busy_timeout_ms / 1000)
