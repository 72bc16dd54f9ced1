"""One place that decides when a unit of work is committed, and retries it when the
database reports a deadlock (InnoDB can deadlock two upserts racing on one key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .extensions import db

T = TypeVar("T")

MYSQL_RETRYABLE = {1213, 1205}  # deadlock found; lock wait timeout exceeded
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


def committed(work: Callable[[], T], attempts: int = 5) -> T:
    """Run ``work`` on the ORM session and commit; roll back and run it again on a deadlock."""
    for attempt in _retrying(attempts):
        with attempt:
            try:
                result = work()
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
    return result


def committed_on_connection(work: Callable[[Connection], T], attempts: int = 5) -> T:
    """``committed`` for the worker API: a Core connection straight from the pool, no ORM
    session (a third of a worker call's CPU, bench/RESULTS.md). The first attempt runs outside
    tenacity, whose bookkeeping cost more than the statement on every call that never retries."""
    try:
        with db.engine.begin() as connection:
            return work(connection)
    except DBAPIError as exc:
        if not is_transient_conflict(exc) or attempts <= 1:
            raise
    for attempt in _retrying(attempts - 1):
        with attempt, db.engine.begin() as connection:
            result = work(connection)
    return result
