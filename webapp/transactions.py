"""One place that decides when a unit of work is committed, and retries it when the
database reports a deadlock (InnoDB can deadlock two upserts racing on one key)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from flask import current_app
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .database import WRITER_QUEUE
from .extensions import db

T = TypeVar("T")

# Deadlock found. Not 1205 (lock wait timeout exceeded): that is the deadline, answered 503,
# and retrying it would multiply the deadline.
MYSQL_RETRYABLE = {1213}
POSTGRES_RETRYABLE = {"40P01", "40001"}  # deadlock detected; serialization failure


def is_transient_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate in POSTGRES_RETRYABLE:
        return True
    args = getattr(original, "args", ())
    return bool(args) and args[0] in MYSQL_RETRYABLE


def _retrying(attempts: int) -> Retrying:
    return Retrying(
        retry=retry_if_exception(is_transient_conflict),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.01, max=0.2),
        reraise=True,
    )


def writer_turn() -> AbstractContextManager:
    """Wait for this process's turn to write to a SQLite file (``database.SQLiteWriterQueue``);
    nothing to wait for on a database server."""
    queue = current_app.extensions.get(WRITER_QUEUE)
    return queue.turn() if queue is not None else nullcontext()


def committed(work: Callable[[], T], attempts: int = 5) -> T:
    """Run ``work`` on the ORM session and commit; roll back and run it again on a deadlock."""
    return _with_retries(lambda: _commit_once(work), attempts)


def _with_retries(attempt_once: Callable[[], T], attempts: int) -> T:
    """``attempt_once()``, and again on a deadlock, up to ``attempts`` in all. The first attempt
    runs outside tenacity, whose bookkeeping cost more than a worker call's statement on every
    call that never retries (most of them; bench/RESULTS.md)."""
    try:
        return attempt_once()
    except DBAPIError as exc:
        if not is_transient_conflict(exc) or attempts <= 1:
            raise
    for attempt in _retrying(attempts - 1):
        with attempt:
            result = attempt_once()
    return result


def _commit_once(work: Callable[[], T]) -> T:
    with writer_turn():
        try:
            result = work()
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    return result


# Where switching a connection to autocommit pays (bench/profile_worker.py, wall time per call):
# PostgreSQL saves the BEGIN and COMMIT round trips (GET 0.82 -> 0.59 ms, PUT 1.15 -> 0.88 ms).
# SQLite has no round trips to save and pays for the switch (GET 0.27 -> 0.33 ms); MariaDB's
# driver would send SET AUTOCOMMIT on every checkout and checkin.
_CHEAP_AUTOCOMMIT = {"postgresql"}


@contextmanager
def _single_statement_connection(read_only: bool) -> Iterator[Connection]:
    engine = db.engine
    if engine.dialect.name == "sqlite" and not read_only:
        with writer_turn(), engine.begin() as connection:
            yield connection
    elif engine.dialect.name in _CHEAP_AUTOCOMMIT:
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    else:
        with engine.begin() as connection:
            yield connection


def committed_on_connection(work: Callable[[Connection], T], attempts: int = 5, *, read_only: bool = False) -> T:
    """``committed`` for the worker API, whose calls are one statement each (or statements that
    need not be atomic: a delete, then a lookup to tell "no such TI" from "no such key").

    A Core connection straight from the pool, no ORM session: that was a third of a worker
    call's CPU. In autocommit where that pays, so a call is one round trip instead of
    BEGIN, statement, COMMIT. Writers to a SQLite file queue up first
    (``database.SQLiteWriterQueue``); ``read_only`` work does not."""

    def attempt_once() -> T:
        with _single_statement_connection(read_only) as connection:
            return work(connection)

    return _with_retries(attempt_once, attempts)
