"""Versioned edits for people (UI) and tools (admin API), and the listing they work from."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from ..errors import Conflict, InvalidInput, KeyNotFound, PreconditionFailed
from ..extensions import db
from ..models import TaskState, utcnow
from .keys import TaskInstanceScope, _in_scope, live_condition, write
from .rules import expiry_for_retention, parse_timestamp


# --- versioned edits: the admin API and the UI --------------------------------------------
#
# People edit keys while workers write them. Each edit names the row version it was based
# on (an ETag of row id and version, so a key deleted and re-created never matches an old
# form) and is refused with 412 when the row moved on. Each returns the entry before and
# after, which the history records.


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    value_json: str
    version: int
    updated_at: datetime
    expires_at: datetime | None

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)

    @property
    def etag(self) -> str:
        return f'"{self.id}.{self.version}"'

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Change:
    before: Entry | None
    after: Entry | None


def parse_etag(raw: str) -> tuple[int, int]:
    try:
        row_id, version = raw.strip().removeprefix("W/").strip('"').split(".")
        return int(row_id), int(version)
    except ValueError:
        raise InvalidInput("If-Match", f"{raw!r} is not an ETag of this API") from None


def parse_admin_expiry(raw: Any, retention_days: int, now: datetime | None = None) -> datetime | None:
    """``"default"`` (the configured retention), null (never) or an aware future timestamp."""
    now = now or utcnow()
    if raw == "default":
        return expiry_for_retention(retention_days, now)
    if isinstance(raw, str) and _is_naive_timestamp(raw):
        raise InvalidInput("expires_at", "must include a UTC offset, e.g. 2026-12-01T00:00:00Z")
    expires_at = parse_timestamp(raw)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at", "is in the past; delete the key instead")
    return expires_at


def _is_naive_timestamp(raw: str) -> bool:
    try:
        return datetime.fromisoformat(raw).tzinfo is None
    except ValueError:
        return False  # not a timestamp at all: parse_timestamp says so


def current_entry(scope: TaskInstanceScope, key: str, now: datetime | None = None) -> Entry | None:
    """The live entry of a key, or None when it is absent or expired."""
    row = db.session.execute(
        select(TaskState.id, TaskState.key, TaskState.value, TaskState.version,
               TaskState.updated_at, TaskState.expires_at)
        .where(*_in_scope(scope), TaskState.key == key, live_condition(now))
    ).first()
    return None if row is None else Entry(*row)


def get_entry(scope: TaskInstanceScope, key: str, now: datetime | None = None) -> Entry:
    entry = current_entry(scope, key, now)
    if entry is None:
        raise KeyNotFound(key)
    return entry


def _check_precondition(key: str, current: Entry | None, if_match: str | None) -> None:
    if if_match is None:
        return
    if current is None or (current.id, current.version) != parse_etag(if_match):
        state = "was deleted" if current is None else f"is now version {current.version}"
        raise PreconditionFailed(f"Key {key!r} changed since you read it: it {state}", current)


def _guarded_update(scope: TaskInstanceScope, key: str, before: Entry, values: dict) -> None:
    """UPDATE only the row version we checked; a worker write in between makes it a 412."""
    updated = db.session.execute(
        update(TaskState)
        .where(*_in_scope(scope), TaskState.id == before.id, TaskState.version == before.version)
        .values(**values, version=TaskState.version + 1)
    ).rowcount
    if updated == 0:
        raise PreconditionFailed(f"Key {key!r} changed while saving", current_entry(scope, key))


UNCONDITIONAL_EDIT_ATTEMPTS = 10


def _versioned_write(scope: TaskInstanceScope, key: str, values: dict, *, if_match: str | None,
                     now: datetime, create: Callable[[], None] | None) -> Change:
    """Update the row version we read (``values`` plus ``updated_at``), or ``create`` it when
    there is none. Without If-Match the caller asked for no precondition: when a worker wrote
    the key between our read and our guarded update, read again rather than answer 412."""
    for attempt in range(UNCONDITIONAL_EDIT_ATTEMPTS):
        before = current_entry(scope, key, now)
        _check_precondition(key, before, if_match)
        try:
            if before is not None:
                _guarded_update(scope, key, before, {**values, "updated_at": now})
            elif create is not None:
                create()
            else:
                raise KeyNotFound(key)
        except PreconditionFailed:
            if if_match is not None or attempt == UNCONDITIONAL_EDIT_ATTEMPTS - 1:
                raise
            continue
        return Change(before, get_entry(scope, key, now))
    raise AssertionError("unreachable")


def put_entry(scope: TaskInstanceScope, key: str, encoded_value: str, expires_at: datetime | None, *,
              if_match: str | None = None, now: datetime | None = None) -> Change:
    """Create or replace a key and its expiry."""
    now = now or utcnow()
    return _versioned_write(
        scope, key, {"value": encoded_value, "expires_at": expires_at}, if_match=if_match, now=now,
        create=lambda: write(scope.ti_id, key, encoded_value, expires_at, now),
    )


def add_entry(scope: TaskInstanceScope, key: str, encoded_value: str, expires_at: datetime | None, *,
              now: datetime | None = None) -> Change:
    """Create a key that must not exist yet: adding is not editing. (A worker creating it
    between this check and the write still wins the race, as any worker write would.)"""
    now = now or utcnow()
    if current_entry(scope, key, now) is not None:
        raise Conflict(f"A key named {key!r} already exists; edit it instead.", field="key")
    return put_entry(scope, key, encoded_value, expires_at, now=now)


def extend_entry(scope: TaskInstanceScope, key: str, delta: timedelta, *, if_match: str | None = None,
                 now: datetime | None = None) -> Change:
    """Push a key's expiry out by ``delta``: from its current expiry, or from now for a key
    that never expires or has already expired. A key that is gone is a 412, like any edit
    of a version that moved on."""
    now = now or utcnow()
    entry = current_entry(scope, key, now)
    if entry is None:
        raise PreconditionFailed(f"Key {key!r} is gone", None)
    start = max(entry.expires_at or now, now)
    return put_entry(scope, key, entry.value_json, start + delta, if_match=if_match, now=now)


def patch_value(scope: TaskInstanceScope, key: str, encoded_value: str, *,
                if_match: str | None = None, now: datetime | None = None) -> Change:
    """Change the value and keep the expiry."""
    return _versioned_write(scope, key, {"value": encoded_value}, if_match=if_match, now=now or utcnow(),
                            create=None)


def delete_entry(scope: TaskInstanceScope, key: str, *, if_match: str | None = None,
                 now: datetime | None = None) -> Change:
    before = current_entry(scope, key, now)
    _check_precondition(key, before, if_match)
    if before is not None:
        deleted = db.session.execute(
            delete(TaskState).where(TaskState.id == before.id, TaskState.version == before.version)
        ).rowcount
        if deleted == 0 and if_match is not None:
            raise PreconditionFailed(f"Key {key!r} changed while deleting", current_entry(scope, key))
    return Change(before, None)


def list_entries(scope: TaskInstanceScope, *, limit: int, offset: int = 0, include_expired: bool = False,
                 now: datetime | None = None) -> tuple[list[Entry], int]:
    """A task instance's entries ordered by key, one page of them, and how many there are."""
    conditions = list(_in_scope(scope))
    if not include_expired:
        conditions.append(live_condition(now))
    total = db.session.execute(select(func.count()).select_from(TaskState).where(*conditions)).scalar_one()
    rows = db.session.execute(
        select(TaskState.id, TaskState.key, TaskState.value, TaskState.version,
               TaskState.updated_at, TaskState.expires_at)
        .where(*conditions).order_by(TaskState.key).limit(limit).offset(offset)
    ).all()
    return [Entry(*row) for row in rows], total
