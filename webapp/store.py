"""Every rule of the task store: validation, expiry, upsert, delete, clear and cleanup.

The worker API, the admin API, the UI and the CLI all call these functions; none of them
talks to the ``task_state`` table directly. Functions execute statements on the current
session and leave the commit to the caller, so that a state change and a clear can share
one transaction (``clear_on_success``).
"""

from __future__ import annotations

import json
import logging
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from .errors import InvalidInput, KeyNotFound, NotFound, PreconditionFailed
from .extensions import db
from .models import KEY_LENGTH, TaskInstance, TaskState, utcnow

log = logging.getLogger(__name__)

PUT_BODY_FIELDS = ("value", "expires_at")


@dataclass(frozen=True)
class TaskInstanceScope:
    """The four names that scope a key, plus the run row the keys hang off."""

    ti_id: uuid.UUID
    dag_run_id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


# --- validation -------------------------------------------------------------------------


def validate_key(key: str) -> str:
    if not key:
        raise InvalidInput("key", "must not be empty")
    if len(key) > KEY_LENGTH:
        raise InvalidInput("key", f"is {len(key)} characters long; the limit is {KEY_LENGTH}")
    for position, char in enumerate(key):
        if unicodedata.category(char) == "Cc":
            raise InvalidInput("key", f"contains the control character U+{ord(char):04X} at position {position}")
    return key


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes | str, field: str = "body", *, constants_as_floats: bool = False) -> Any:
    """Strict JSON: NaN and ±Infinity are refused. With ``constants_as_floats`` they parse as
    floats instead, for a caller that checks every field (``encode_value`` refuses them) and
    so can name the field that holds one."""
    try:
        parsed = json.loads(raw, parse_constant=float if constants_as_floats else _reject_constant)
    except RecursionError:
        raise InvalidInput(field, "is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput(field, f"is not valid JSON ({exc})") from None
    return parsed


def encode_value(value: Any) -> str:
    """The stored form of a value: compact JSON text, written back exactly as stored."""
    if value is None:
        raise InvalidInput("value", "must not be null; delete the key instead")
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidInput("value", "NaN and Infinity are not JSON values") from None
    except RecursionError:
        raise InvalidInput("value", "is nested too deeply") from None
    except TypeError as exc:
        raise InvalidInput("value", f"is not a JSON value ({exc})") from None
    try:
        # "\ud800" is valid JSON syntax but not Unicode: no database can store it as text.
        encoded.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("value", "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not Unicode") from None
    return encoded


def check_value_size(encoded: str, limit: int) -> None:
    """The soft limit the admin API and UI enforce (0 means no limit)."""
    size = len(encoded.encode("utf-8"))
    if limit and size > limit:
        raise InvalidInput("value", f"is {size} bytes of JSON; the limit is {limit} bytes")


def warn_if_oversized(scope: TaskInstanceScope, key: str, encoded: str, limit: int) -> None:
    """Workers may exceed the soft limit: a running task must not break on it."""
    size = len(encoded.encode("utf-8"))
    if limit and size > limit:
        log.warning(
            "value of %r for task instance %s is %d bytes, over max_value_bytes=%d; stored anyway",
            key, scope.ti_id, size, limit,
        )


def parse_timestamp(raw: Any, field: str = "expires_at") -> datetime | None:
    """ISO 8601 text or null. A timestamp without an offset is read as UTC."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput(field, f"must be an ISO 8601 timestamp or null, not {type(raw).__name__}")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(field, f"{raw!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        raise InvalidInput(field, f"{raw!r} is out of range in UTC") from None


def parse_worker_put_body(raw: bytes) -> tuple[str, datetime | None]:
    """The worker API's PUT body: ``{"value": <json, not null>, "expires_at": <ISO 8601 or null>}``."""
    body = parse_json(raw, constants_as_floats=True)  # NaN then fails naming its field
    if not isinstance(body, dict):
        raise InvalidInput("body", f"must be a JSON object, not {_json_type(body)}")
    unexpected = [name for name in body if name not in PUT_BODY_FIELDS]
    if unexpected:
        raise InvalidInput(unexpected[0], f"is not a field of this body (allowed: {', '.join(PUT_BODY_FIELDS)})")
    if "value" not in body:
        raise InvalidInput("value", "is required")
    return encode_value(body["value"]), parse_timestamp(body.get("expires_at"))


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def expiry_for_retention(retention_days: int, now: datetime | None = None) -> datetime | None:
    """The configured default: ``now + retention_days``, or never when it is 0."""
    if retention_days == 0:
        return None
    return (now or utcnow()) + timedelta(days=retention_days)


# --- task instance lookup -----------------------------------------------------------------


def parse_ti_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Task instance {raw} not found") from None


def find_task_instance(ti_id: uuid.UUID) -> TaskInstanceScope:
    """One SELECT; NotFound with Airflow's message when the TI does not exist."""
    row = db.session.execute(
        select(
            TaskInstance.dag_run_id, TaskInstance.dag_id, TaskInstance.run_id,
            TaskInstance.task_id, TaskInstance.map_index,
        ).where(TaskInstance.id == ti_id)
    ).first()
    if row is None:
        raise NotFound(f"Task instance {ti_id} not found")
    return TaskInstanceScope(ti_id, *row)


def scope_of(ti: TaskInstance) -> TaskInstanceScope:
    return TaskInstanceScope(ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


# --- reads and writes ---------------------------------------------------------------------


def _in_scope(scope: TaskInstanceScope):
    return (
        TaskState.dag_run_id == scope.dag_run_id,
        TaskState.task_id == scope.task_id,
        TaskState.map_index == scope.map_index,
    )


def _live(now: datetime):
    """Expired keys vanish for every reader at once, before cleanup removes the rows."""
    return or_(TaskState.expires_at.is_(None), TaskState.expires_at > now)


def read_value_json(scope: TaskInstanceScope, key: str, now: datetime | None = None) -> str:
    """The stored JSON text of a live key; NotFound names the key."""
    stored = db.session.execute(
        select(TaskState.value).where(*_in_scope(scope), TaskState.key == key, _live(now or utcnow()))
    ).scalar()
    if stored is None:
        raise KeyNotFound(key)
    return stored


def write(scope: TaskInstanceScope, key: str, encoded_value: str, expires_at: datetime | None,
          now: datetime | None = None) -> None:
    """Create or overwrite in one statement, so racing writers never collide: last write wins."""
    now = now or utcnow()
    row = {
        "dag_run_id": scope.dag_run_id, "dag_id": scope.dag_id, "run_id": scope.run_id,
        "task_id": scope.task_id, "map_index": scope.map_index, "key": key,
        "value": encoded_value, "version": 1, "updated_at": now, "expires_at": expires_at,
    }
    try:
        db.session.execute(_upsert(row))
    except IntegrityError:
        # The run was deleted between the TI lookup and this write.
        raise NotFound(f"Task instance {scope.ti_id} not found") from None


def _upsert(row: dict):
    dialect = db.session.get_bind().dialect.name
    table = TaskState.__table__
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table).values(row)
        return statement.on_duplicate_key_update(
            value=statement.inserted.value,
            updated_at=statement.inserted.updated_at,
            expires_at=statement.inserted.expires_at,
            version=table.c.version + 1,
        )
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(table).values(row)
    return statement.on_conflict_do_update(
        index_elements=["dag_run_id", "task_id", "map_index", "key"],
        set_={
            "value": statement.excluded.value,
            "updated_at": statement.excluded.updated_at,
            "expires_at": statement.excluded.expires_at,
            "version": table.c.version + 1,
        },
    )


def delete_key(scope: TaskInstanceScope, key: str) -> bool:
    """Deleting a key that is not there is fine; returns whether a row went."""
    result = db.session.execute(delete(TaskState).where(*_in_scope(scope), TaskState.key == key))
    return result.rowcount > 0


def _clear_scope(scope: TaskInstanceScope, all_map_indices: bool) -> list:
    conditions = [TaskState.dag_run_id == scope.dag_run_id, TaskState.task_id == scope.task_id]
    if not all_map_indices:
        conditions.append(TaskState.map_index == scope.map_index)
    return conditions


def clear(scope: TaskInstanceScope, *, all_map_indices: bool = False) -> int:
    """Every key of this task instance (this map index only, unless asked for all)."""
    return db.session.execute(delete(TaskState).where(*_clear_scope(scope, all_map_indices))).rowcount


def rows_to_clear(scope: TaskInstanceScope, *, all_map_indices: bool = False) -> list:
    """What ``clear`` would delete (expired rows included): map_index, key, value, expires_at."""
    return db.session.execute(
        select(TaskState.map_index, TaskState.key, TaskState.value, TaskState.expires_at)
        .where(*_clear_scope(scope, all_map_indices))
    ).all()


def count_live_keys(scope: TaskInstanceScope, now: datetime | None = None) -> int:
    return db.session.execute(
        select(func.count()).select_from(TaskState).where(*_in_scope(scope), _live(now or utcnow()))
    ).scalar_one()


# --- reads for the admin UI's overview pages ----------------------------------------------
# (the per-DAG and per-run key counts are built in runs.py; this keeps "live" defined once)


def live_condition(now: datetime | None = None):
    """The "not expired" condition, for counting live keys in other modules' queries."""
    return _live(now or utcnow())


# --- garbage collection -------------------------------------------------------------------


def _expired_query(now: datetime):
    # Ordered by expires_at so each batch is a short range scan of its index.
    return (
        select(
            TaskState.id, TaskState.dag_id, TaskState.run_id, TaskState.task_id,
            TaskState.map_index, TaskState.key, TaskState.expires_at,
        )
        .where(TaskState.expires_at <= now)
        .order_by(TaskState.expires_at, TaskState.id)
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
        deleted = db.session.execute(
            delete(TaskState).where(TaskState.id.in_(ids), TaskState.expires_at <= now)
        ).rowcount
        db.session.commit()
        yield deleted
        if len(ids) < batch_size:
            return


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
        .where(*_in_scope(scope), TaskState.key == key, _live(now or utcnow()))
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


def put_entry(scope: TaskInstanceScope, key: str, encoded_value: str, expires_at: datetime | None, *,
              if_match: str | None = None, now: datetime | None = None) -> Change:
    now = now or utcnow()
    before = current_entry(scope, key, now)
    _check_precondition(key, before, if_match)
    if before is None:
        write(scope, key, encoded_value, expires_at, now)
    else:
        _guarded_update(scope, key, before, {"value": encoded_value, "expires_at": expires_at, "updated_at": now})
    return Change(before, get_entry(scope, key, now))


def patch_value(scope: TaskInstanceScope, key: str, encoded_value: str, *,
                if_match: str | None = None, now: datetime | None = None) -> Change:
    """Change the value and keep the expiry."""
    now = now or utcnow()
    before = current_entry(scope, key, now)
    _check_precondition(key, before, if_match)
    if before is None:
        raise KeyNotFound(key)
    _guarded_update(scope, key, before, {"value": encoded_value, "updated_at": now})
    return Change(before, get_entry(scope, key, now))


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
        conditions.append(_live(now or utcnow()))
    total = db.session.execute(select(func.count()).select_from(TaskState).where(*conditions)).scalar_one()
    rows = db.session.execute(
        select(TaskState.id, TaskState.key, TaskState.value, TaskState.version,
               TaskState.updated_at, TaskState.expires_at)
        .where(*conditions).order_by(TaskState.key).limit(limit).offset(offset)
    ).all()
    return [Entry(*row) for row in rows], total
