"""Versioned edits for people (UI) and tools (admin API), the listing they work from, and
their history.

People edit keys while workers write them. Each edit may name the row version it was based
on (``If-Match``: an ETag of row id and version) and is refused with 412 when the row moved
on; without one, an edit that finds the row rewritten between its read and its write reads
again. Every edit records itself in the history in the same transaction, with the entry
before and after, and only when it changed something. Each counts as one store operation
(``metrics.count_store_operation``): a read (one key, or a listing), write, delete or clear;
the reads an edit makes of the key it changes are part of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, not_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from .. import metrics
from ..errors import Conflict, InvalidInput, KeyNotFound, PreconditionFailed
from ..extensions import db
from ..models import KeyChange, utcnow
from . import history
from .access import live_condition
from .entries import ENTRY_COLUMNS, Change, Entry, parse_etag
from .rules import expiry_for_retention, validate_key
from .scopes import Scope, ScopeKind

# An edit without If-Match that keeps losing the race to workers rewriting the key gives up
# (412) after this many reads; each lost race means a worker wrote in between.
UNCONDITIONAL_EDIT_ATTEMPTS = 10


def admin_expiry(chosen: Any, retention_days: int, now: datetime | None = None) -> datetime | None:
    """``"default"`` (the configured retention), None (never) or an aware future datetime."""
    now = now or utcnow()
    if chosen == "default":
        return expiry_for_retention(retention_days, now)
    if chosen is not None and chosen <= now:
        raise InvalidInput("expires_at", "is in the past; delete the key instead")
    return chosen


def _entry_columns(kind: ScopeKind) -> list:
    return [kind.column(name) for name in (*ENTRY_COLUMNS, *kind.writer_columns)]


def _entry(scope: Scope, row) -> Entry:
    count = len(ENTRY_COLUMNS)
    writer = scope.describe_writer(tuple(row[count:])) if scope.kind.writer_columns else None
    return Entry(*row[:count], written_by=writer)


def current_entry(scope: Scope, key: str, now: datetime | None = None) -> Entry | None:
    """The live entry of a key, or None when it is absent or expired."""
    validate_key(key)
    kind = scope.kind
    row = db.session.execute(
        select(*_entry_columns(kind)).where(scope.condition(), kind.column("key") == key, live_condition(now, kind))
    ).first()
    return None if row is None else _entry(scope, row)


def get_entry(scope: Scope, key: str, now: datetime | None = None) -> Entry:
    """A person's or tool's read of one key (counted as a read); KeyNotFound when it is not there."""
    entry = current_entry(scope, key, now)
    metrics.count_store_operation("read", scope.kind.name)
    if entry is None:
        raise KeyNotFound(key)
    return entry


# An If-Match that holds only while the key does not exist: a write that must create it.
ABSENT = "absent"


def _check_precondition(key: str, current: Entry | None, if_match: str | None) -> None:
    if if_match is None:
        return
    if if_match == ABSENT:
        if current is not None:
            raise PreconditionFailed(f"Key {key!r} exists", current)
        return
    if current is None or (current.id, current.version) != parse_etag(if_match):
        state = "was deleted" if current is None else f"is now version {current.version}"
        raise PreconditionFailed(f"Key {key!r} changed since you read it: it {state}", current)


class _Raced(Exception):
    """A worker wrote the key between this edit's read and its write."""


def _guarded_update(scope: Scope, before: Entry, values: dict) -> None:
    """UPDATE only the row version we read."""
    table = scope.kind.table
    updated = db.session.execute(
        update(table).where(table.c.id == before.id, table.c.version == before.version)
        .values(**values, version=table.c.version + 1)
    ).rowcount
    if updated == 0:
        raise _Raced


def remove_expired_leftovers(scope: Scope, keys: list[str], now: datetime) -> None:
    """Delete rows of these keys that have expired but were not cleaned up yet: an expired key
    is gone for every reader, so a write creates it anew (its row would block the insert)."""
    table = scope.kind.table
    db.session.execute(delete(table).where(scope.condition(), table.c.key.in_(keys),
                                           not_(live_condition(now, scope.kind))))


def _insert_new(scope: Scope, key: str, values: dict, now: datetime) -> None:
    """INSERT a key that was absent when read; _Raced when a worker created it meanwhile."""
    table = scope.kind.table
    remove_expired_leftovers(scope, [key], now)
    row = {**scope.row_values(), "key": key, "version": 1, **values}
    dialect = db.session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = dialect_insert(table).values(row).on_conflict_do_nothing().execution_options(
            preserve_rowcount=True)
        if db.session.execute(statement).rowcount == 0:
            raise _Raced
        return
    try:  # MariaDB/MySQL: no "do nothing" that cannot also hide other errors; a savepoint instead
        with db.session.begin_nested():
            db.session.execute(insert(table).values(row))
    except IntegrityError:
        raise _Raced from None


def _versioned_write(scope: Scope, key: str, values: dict, *, action: str, actor: str, if_match: str | None,
                     now: datetime, create: bool) -> Change:
    """Update the row version we read with ``values`` (plus ``updated_at`` and who wrote it), or
    create the key when there is none and ``create`` allows; record the change."""
    values = {**values, "updated_at": now, **scope.kind.written_by_actor(actor)}
    for _attempt in range(UNCONDITIONAL_EDIT_ATTEMPTS):
        before = current_entry(scope, key, now)
        _check_precondition(key, before, if_match)
        try:
            if before is not None:
                _guarded_update(scope, before, values)
            elif create:
                _insert_new(scope, key, values, now)
            else:
                raise KeyNotFound(key)
        except _Raced:
            if if_match is not None:
                raise PreconditionFailed(f"Key {key!r} changed while saving", current_entry(scope, key, now)) from None
            continue
        after = current_entry(scope, key, now)
        if after is None:  # what get_entry said before it counted reads; not expected right after the write
            raise KeyNotFound(key)
        change = history.record(scope, key, Change(before, after), actor=actor, action=action)
        metrics.count_store_operation("write", scope.kind.name)
        return change
    raise PreconditionFailed(f"Key {key!r} kept changing while saving; try again", current_entry(scope, key, now))


def _check_expiry_allowed(scope: Scope, expires_at: datetime | None) -> None:
    if expires_at is not None and not scope.kind.expires:
        raise InvalidInput("expires_at", f"{scope.kind.name} keys never expire")


def put_entry(scope: Scope, key: str, encoded_value: str, expires_at: datetime | None, *, actor: str,
              if_match: str | None = None, now: datetime | None = None, action: str = "set") -> Change:
    """Create or replace a key and its expiry."""
    _check_expiry_allowed(scope, expires_at)
    return _versioned_write(scope, key, {"value": encoded_value, "expires_at": expires_at}, action=action,
                            actor=actor, if_match=if_match, now=now or utcnow(), create=True)


def add_entry(scope: Scope, key: str, encoded_value: str, expires_at: datetime | None, *, actor: str,
              now: datetime | None = None) -> Change:
    """Create a key that must not exist yet: adding is not editing. (A worker creating it
    between this check and the write still wins the race, as any worker write would.)"""
    now = now or utcnow()
    if current_entry(scope, key, now) is not None:
        raise Conflict(f"A key named {key!r} already exists; edit it instead.", field="key")
    return put_entry(scope, key, encoded_value, expires_at, actor=actor, now=now)


def extend_entry(scope: Scope, key: str, delta: timedelta, *, actor: str, if_match: str | None = None,
                 now: datetime | None = None) -> Change:
    """Push a key's expiry out by ``delta``: from its current expiry, or from now for a key
    that never expires or has already expired. A key that is gone is a 412, like any edit
    of a version that moved on."""
    now = now or utcnow()
    entry = current_entry(scope, key, now)
    if entry is None:
        raise PreconditionFailed(f"Key {key!r} is gone", None)
    start = max(entry.expires_at or now, now)
    try:
        new_expiry = start + delta
    except OverflowError:
        raise InvalidInput("by", "would move the expiry past the year 9999; set it to never instead") from None
    return put_entry(scope, key, entry.value_json, new_expiry, actor=actor, if_match=if_match, now=now,
                     action="extend")


def patch_value(scope: Scope, key: str, encoded_value: str, *, actor: str, if_match: str | None = None,
                now: datetime | None = None) -> Change:
    """Change the value and keep the expiry."""
    return _versioned_write(scope, key, {"value": encoded_value}, action="set", actor=actor, if_match=if_match,
                            now=now or utcnow(), create=False)


def delete_entry(scope: Scope, key: str, *, actor: str, if_match: str | None = None,
                 now: datetime | None = None) -> Change:
    """Delete the version read; a worker's rewrite in between is read again (or, with
    If-Match, refused). Deleting a key that is not there changes nothing and records nothing."""
    table = scope.kind.table
    for _attempt in range(UNCONDITIONAL_EDIT_ATTEMPTS):
        before = current_entry(scope, key, now)
        _check_precondition(key, before, if_match)
        if before is None:
            metrics.count_store_operation("delete", scope.kind.name)
            return Change(None, None)
        deleted = db.session.execute(
            delete(table).where(table.c.id == before.id, table.c.version == before.version)
        ).rowcount
        if deleted:
            change = history.record(scope, key, Change(before, None), actor=actor, action="delete")
            metrics.count_store_operation("delete", scope.kind.name)
            return change
        if if_match is not None:
            raise PreconditionFailed(f"Key {key!r} changed while deleting", current_entry(scope, key, now))
    raise PreconditionFailed(f"Key {key!r} kept changing while deleting; try again", current_entry(scope, key, now))


def clear_entries(scope: Scope, *, actor: str) -> int:
    """Delete every key of the scope (expired ones too), with one history row for each key
    that was deleted: exactly those, even when a worker writes a new key meanwhile."""
    kind = scope.kind
    table = kind.table
    recorded = [table.c[name] for name in
                dict.fromkeys((*kind.labels, "id", "key", "value", "expires_at", *kind.writer_columns))]
    statement = delete(table).where(scope.condition())
    if db.session.get_bind().dialect.delete_returning:
        rows = db.session.execute(statement.returning(*recorded)).all()
    else:
        rows = db.session.execute(select(*recorded).where(scope.condition()).with_for_update()).all()
        if rows:
            db.session.execute(delete(table).where(table.c.id.in_([row.id for row in rows])))
    history.record_cleared(scope, rows, actor=actor)
    metrics.count_store_operation("clear", kind.name)
    return len(rows)


# How a listing may be ordered: by key, by last update or by expiry, either way ("-" first:
# descending). Keys that never expire sort after every expiry, whichever way, on every database
# (their NULLs would otherwise go first on some and last on others); the key breaks ties.
ENTRY_ORDERS = ("key", "-key", "updated", "-updated", "expires", "-expires")
_ORDER_COLUMNS = {"key": "key", "updated": "updated_at", "expires": "expires_at"}


def _order_by(kind: ScopeKind, order: str) -> list:
    if order not in ENTRY_ORDERS:
        raise InvalidInput("sort", f"must be one of {', '.join(ENTRY_ORDERS)}")
    name = _ORDER_COLUMNS[order.lstrip("-")]
    if name == "expires_at" and not kind.expires:
        raise InvalidInput("sort", f"{kind.name} keys never expire")
    column, key = kind.column(name), kind.column("key")
    direction = column.desc() if order.startswith("-") else column.asc()
    never_last = [column.is_(None)] if name == "expires_at" else []
    return [*never_last, direction, *([key] if name != "key" else [])]


def list_entries(scope: Scope, *, limit: int, offset: int = 0, include_expired: bool = False,
                 now: datetime | None = None, order: str = "key") -> tuple[list[Entry], int]:
    """A scope's entries in ``order`` (``ENTRY_ORDERS``), one page of them, and how many there are."""
    kind = scope.kind
    order_by = _order_by(kind, order)
    conditions = [scope.condition()]
    if not include_expired:
        conditions.append(live_condition(now, kind))
    total = db.session.execute(select(func.count()).select_from(kind.table).where(*conditions)).scalar_one()
    rows = db.session.execute(
        select(*_entry_columns(kind)).where(*conditions).order_by(*order_by).limit(limit).offset(offset)
    ).all()
    metrics.count_store_operation("read", kind.name)
    return [_entry(scope, row) for row in rows], total


def undoable_delete(scope: Scope, change_id: int, now: datetime | None = None) -> KeyChange | None:
    """The history row of a delete that can still be undone, else None: a delete of this
    scope's key, the key's latest recorded change, the key still absent (no worker has written
    it since) and its old expiry still ahead."""
    now = now or utcnow()
    change = history.latest_change_if(scope, change_id, action="delete")
    if change is None or current_entry(scope, change.key, now) is not None:
        return None
    if change.old_expires_at is not None and change.old_expires_at <= now:
        return None
    return change


def undo_delete(scope: Scope, change_id: int, *, actor: str, now: datetime | None = None) -> Change:
    """Put back the value and expiry a delete removed, recorded as a restore. Refused (409,
    saying why) when anything wrote the key since, or when it would be expired already."""
    now = now or utcnow()
    change = history.latest_change_if(scope, change_id, action="delete")
    if change is None:
        raise Conflict("This delete can no longer be undone: the key was changed after it.", field="change")
    if current_entry(scope, change.key, now) is not None:
        raise Conflict(f"Key {change.key!r} was written again since it was deleted; nothing was restored.",
                       field="change")
    if change.old_expires_at is not None and change.old_expires_at <= now:
        raise Conflict(f"Key {change.key!r} would have expired already; nothing was restored.", field="change")
    try:
        return _versioned_write(scope, change.key, {"value": change.old_value, "expires_at": change.old_expires_at},
                                action="restore", actor=actor, if_match=ABSENT, now=now, create=True)
    except PreconditionFailed:  # a worker created it between the check and the write
        raise Conflict(f"Key {change.key!r} was written again since it was deleted; nothing was restored.",
                       field="change") from None
