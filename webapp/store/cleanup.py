"""Garbage collection of expired keys, in short transactions that do not block writers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import delete, select

from ..extensions import db
from ..models import TaskState, utcnow
from ..transactions import writer_turn


def _expired_query(now: datetime):
    # Ordered by expires_at so each batch is a short range scan of its index.
    return (
        select(
            TaskState.id, TaskState.dag_id, TaskState.run_id, TaskState.task_id,
            TaskState.map_index, TaskState.key, TaskState.expires_at,
        )
        .where(TaskState.expires_at <= now)
        .order_by(TaskState.expires_at)
    )


def list_expired(now: datetime | None = None) -> Iterator:
    """What ``delete_expired`` would remove, streamed."""
    yield from db.session.execute(
        _expired_query(now or utcnow()).execution_options(yield_per=1000)
    )


def delete_expired(*, batch_size: int, now: datetime | None = None) -> Iterator[int]:
    """Delete expired rows in short transactions, yielding each batch's count.

    The DELETE re-checks ``expires_at``: a worker that rewrote a key with a new expiry
    between our SELECT and DELETE keeps it."""
    now = now or utcnow()
    while True:
        oldest = _expired_query(now).with_only_columns(TaskState.id).limit(batch_size)
        ids = db.session.execute(oldest).scalars().all()
        if not ids:
            return
        with writer_turn():  # on SQLite, workers wait for one batch in the queue, not in busy sleeps
            deleted = db.session.execute(
                delete(TaskState).where(TaskState.id.in_(ids), TaskState.expires_at <= now)
            ).rowcount
            db.session.commit()
        yield deleted
        if len(ids) < batch_size:
            return
