"""Garbage collection of expired keys, in short transactions that do not block writers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import delete, func, select

from ..extensions import db
from ..models import utcnow
from ..transactions import committed
from .kinds import KINDS
from .scopes import ScopeKind


def _expiring_kinds() -> tuple[ScopeKind, ...]:
    return tuple(kind for kind in KINDS if kind.expires)


def _expired_query(kind: ScopeKind, now: datetime):
    # Ordered by expires_at so each batch is a short range scan of its index.
    expires_at = kind.column("expires_at")
    return (
        select(kind.column("id"), *(kind.column(name) for name in kind.labels), kind.column("key"), expires_at)
        .where(expires_at <= now)
        .order_by(expires_at)
    )


def count_expired(now: datetime | None = None) -> int:
    """How many rows ``delete_expired`` would remove (for its progress)."""
    now = now or utcnow()
    return sum(db.session.execute(select(func.count()).select_from(kind.table)
                                  .where(kind.column("expires_at") <= now)).scalar_one()
               for kind in _expiring_kinds())


def list_expired(now: datetime | None = None) -> Iterator:
    """What ``delete_expired`` would remove, streamed: each row has the kind's labels, key and
    expires_at."""
    now = now or utcnow()
    for kind in _expiring_kinds():
        yield from db.session.execute(_expired_query(kind, now).execution_options(yield_per=1000))


def delete_expired(*, batch_size: int, now: datetime | None = None) -> Iterator[int]:
    """Delete expired rows in short transactions, yielding each batch's count.

    The DELETE re-checks ``expires_at``: a worker that rewrote a key with a new expiry
    between our SELECT and DELETE keeps it."""
    now = now or utcnow()
    for kind in _expiring_kinds():
        table, row_id, expires_at = kind.table, kind.column("id"), kind.column("expires_at")
        while True:
            oldest = _expired_query(kind, now).with_only_columns(row_id).limit(batch_size)
            ids = db.session.execute(oldest).scalars().all()
            if not ids:
                break
            # One short transaction per batch; on SQLite it takes the writers' turn, so workers
            # wait for one batch in the queue rather than in busy sleeps.
            batch = delete(table).where(row_id.in_(ids), expires_at <= now)
            yield committed(lambda batch=batch: db.session.execute(batch).rowcount)
            if len(ids) < batch_size:
                break


def delete_orphaned_asset_keys(*, batch_size: int) -> Iterator[int]:
    """Keys of assets that no longer exist, in batches. Deleting an asset deletes its keys in
    the same statement (ON DELETE CASCADE); this catches what a database without the cascade
    (a restored dump, a hand-made deletion with foreign keys off) left behind."""
    from ..models import Asset, AssetState

    while True:
        ids = db.session.execute(
            select(AssetState.id).where(~select(Asset.id).where(Asset.id == AssetState.asset_id).exists())
            .limit(batch_size)
        ).scalars().all()
        if not ids:
            return
        batch = delete(AssetState).where(AssetState.id.in_(ids))
        yield committed(lambda batch=batch: db.session.execute(batch).rowcount)
        if len(ids) < batch_size:
            return
