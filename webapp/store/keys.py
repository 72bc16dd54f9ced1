"""A task instance's keys as workers see them: the TI lookup, read, upsert, delete, clear.
Each is one statement, so a worker call costs two (lookup and operation)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from datetime import datetime

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..errors import KeyNotFound, NotFound
from ..extensions import db
from ..models import TaskInstance, TaskState, utcnow


@dataclass(frozen=True)
class TaskInstanceScope:
    """The four names that scope a key, plus the run row the keys hang off."""

    ti_id: uuid.UUID
    dag_run_id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


def parse_ti_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"Task instance {raw} not found") from None


# The worker path runs these on every call, so they are built once, with bind parameters,
# over the tables (not ORM entities): no statement construction or ORM layer per request.
_TI = TaskInstance.__table__
_STATE = TaskState.__table__
_SCOPE = (
    _STATE.c.dag_run_id == bindparam("dag_run_id"),
    _STATE.c.task_id == bindparam("task_id"),
    _STATE.c.map_index == bindparam("map_index"),
    _STATE.c.key == bindparam("key"),
)
_FIND_TI = select(_TI.c.dag_run_id, _TI.c.dag_id, _TI.c.run_id, _TI.c.task_id, _TI.c.map_index).where(
    _TI.c.id == bindparam("ti_id")
)
_READ = select(_STATE.c.value).where(
    *_SCOPE, or_(_STATE.c.expires_at.is_(None), _STATE.c.expires_at > bindparam("now"))
)
_DELETE_KEY = delete(_STATE).where(*_SCOPE)
_UPSERT_COLUMNS = ("dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value", "version",
                   "updated_at", "expires_at")


def _run(statement, parameters: dict):
    return db.session.connection().execute(statement, parameters)


def _scope_parameters(scope: TaskInstanceScope, key: str) -> dict:
    return {"dag_run_id": scope.dag_run_id, "task_id": scope.task_id, "map_index": scope.map_index, "key": key}


def find_task_instance(ti_id: uuid.UUID) -> TaskInstanceScope:
    """One SELECT; NotFound with Airflow's message when the TI does not exist."""
    row = _run(_FIND_TI, {"ti_id": ti_id}).first()
    if row is None:
        raise NotFound(f"Task instance {ti_id} not found")
    return TaskInstanceScope(ti_id, *row)


def scope_of(ti: TaskInstance) -> TaskInstanceScope:
    return TaskInstanceScope(ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


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
    stored = _run(_READ, {**_scope_parameters(scope, key), "now": now or utcnow()}).scalar()
    if stored is None:
        raise KeyNotFound(key)
    return stored


def write(scope: TaskInstanceScope, key: str, encoded_value: str, expires_at: datetime | None,
          now: datetime | None = None) -> None:
    """Create or overwrite in one statement, so racing writers never collide: last write wins."""
    row = {
        "dag_run_id": scope.dag_run_id, "dag_id": scope.dag_id, "run_id": scope.run_id,
        "task_id": scope.task_id, "map_index": scope.map_index, "key": key,
        "value": encoded_value, "version": 1, "updated_at": now or utcnow(), "expires_at": expires_at,
    }
    try:
        _run(_upsert_for(db.session.get_bind().dialect.name), row)
    except IntegrityError:
        # The run was deleted between the TI lookup and this write.
        raise NotFound(f"Task instance {scope.ti_id} not found") from None


@cache
def _upsert_for(dialect: str):
    """The dialect's single-statement upsert; the version counts every write."""
    values = {name: bindparam(name, type_=_STATE.c[name].type) for name in _UPSERT_COLUMNS}
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(_STATE).values(values)
        return statement.on_duplicate_key_update(
            value=statement.inserted.value,
            updated_at=statement.inserted.updated_at,
            expires_at=statement.inserted.expires_at,
            version=_STATE.c.version + 1,
        )
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(_STATE).values(values)
    return statement.on_conflict_do_update(
        index_elements=["dag_run_id", "task_id", "map_index", "key"],
        set_={
            "value": statement.excluded.value,
            "updated_at": statement.excluded.updated_at,
            "expires_at": statement.excluded.expires_at,
            "version": _STATE.c.version + 1,
        },
    )


def delete_key(scope: TaskInstanceScope, key: str) -> bool:
    """Deleting a key that is not there is fine; returns whether a row went."""
    return _run(_DELETE_KEY, _scope_parameters(scope, key)).rowcount > 0


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


def live_condition(now: datetime | None = None):
    """The "not expired" condition, for counting live keys in other modules' queries."""
    return _live(now or utcnow())
