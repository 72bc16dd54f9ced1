"""A task instance's keys as workers see them: read, upsert, delete, clear, keyed by the task
instance's id. A read and a write are one statement each, the task-instance lookup included;
a delete looks the task instance up only when nothing was deleted; a clear looks it up first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, literal, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

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


def ti_not_found(ti_id: uuid.UUID | str) -> NotFound:
    return NotFound(f"Task instance {ti_id} not found")  # Airflow's wording


def parse_ti_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ti_not_found(raw) from None


def live_condition(now: datetime | None = None):
    """The "not expired" condition for every query: expired keys vanish for every reader at
    once, before cleanup removes the rows. ``now`` may be a bind parameter."""
    return or_(TaskState.expires_at.is_(None), TaskState.expires_at > (utcnow() if now is None else now))


# The worker path runs these on every call, so they are built once, with bind parameters,
# over the tables (not ORM entities): no statement construction or ORM layer per request.
_TI = TaskInstance.__table__
_STATE = TaskState.__table__
_OF_TI = (
    _STATE.c.dag_run_id == _TI.c.dag_run_id,
    _STATE.c.task_id == _TI.c.task_id,
    _STATE.c.map_index == _TI.c.map_index,
)
_THIS_TI = _TI.c.id == bindparam("ti_id", type_=_TI.c.id.type)
_LIVE = live_condition(bindparam("now", type_=_STATE.c.expires_at.type))
_FIND_TI = select(_TI.c.dag_run_id, _TI.c.dag_id, _TI.c.run_id, _TI.c.task_id, _TI.c.map_index).where(_THIS_TI)
# No row: no such task instance. A row with a NULL value: no such live key.
_READ = select(_TI.c.id, _STATE.c.value).select_from(
    _TI.outerjoin(_STATE, and_(*_OF_TI, _STATE.c.key == bindparam("key"), _LIVE))
).where(_THIS_TI)
_DELETE_KEY = delete(_STATE).where(
    _STATE.c.dag_run_id == select(_TI.c.dag_run_id).where(_THIS_TI).scalar_subquery(),
    _STATE.c.task_id == select(_TI.c.task_id).where(_THIS_TI).scalar_subquery(),
    _STATE.c.map_index == select(_TI.c.map_index).where(_THIS_TI).scalar_subquery(),
    _STATE.c.key == bindparam("key"),
)


def _connection(connection: Connection | None) -> Connection:
    return connection if connection is not None else db.session.connection()


def find_task_instance(ti_id: uuid.UUID, connection: Connection | None = None) -> TaskInstanceScope:
    """One SELECT; NotFound with Airflow's message when the TI does not exist."""
    row = _connection(connection).execute(_FIND_TI, {"ti_id": ti_id}).first()
    if row is None:
        raise ti_not_found(ti_id)
    return TaskInstanceScope(ti_id, *row)


def scope_of(ti: TaskInstance) -> TaskInstanceScope:
    return TaskInstanceScope(ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


def _in_scope(scope: TaskInstanceScope):
    return (
        TaskState.dag_run_id == scope.dag_run_id,
        TaskState.task_id == scope.task_id,
        TaskState.map_index == scope.map_index,
    )


def read_value_json(ti_id: uuid.UUID, key: str, now: datetime | None = None, *,
                    connection: Connection | None = None) -> str:
    """The stored JSON text of a live key; NotFound for an unknown TI, KeyNotFound naming the key."""
    row = _connection(connection).execute(_READ, {"ti_id": ti_id, "key": key, "now": now or utcnow()}).first()
    if row is None:
        raise ti_not_found(ti_id)
    if row.value is None:
        raise KeyNotFound(key)
    return row.value


def write(ti_id: uuid.UUID, key: str, encoded_value: str, expires_at: datetime | None,
          now: datetime | None = None, *, connection: Connection | None = None) -> None:
    """Create or overwrite in one statement, so racing writers never collide: last write wins.
    The row's names come from the TI in the same statement: nothing inserted means no such TI."""
    connection = _connection(connection)
    parameters = {"ti_id": ti_id, "key": key, "value": encoded_value, "updated_at": now or utcnow(),
                  "expires_at": expires_at}
    if connection.execute(_upsert_for(connection.dialect.name), parameters).rowcount == 0:
        raise ti_not_found(ti_id)


@cache
def _upsert_for(dialect: str):
    """INSERT ... SELECT from the TI, then the dialect's own "on conflict, update"; the version
    counts every write."""
    def given(name: str):
        return bindparam(name, type_=_STATE.c[name].type)

    from_ti = select(_TI.c.dag_run_id, _TI.c.dag_id, _TI.c.run_id, _TI.c.task_id, _TI.c.map_index,
                     given("key"), given("value"), literal(1), given("updated_at"), given("expires_at")
                     ).where(_THIS_TI)
    columns = ["dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value", "version",
               "updated_at", "expires_at"]
    changed = {"value": given("value"), "updated_at": given("updated_at"), "expires_at": given("expires_at"),
               "version": _STATE.c.version + 1}
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(_STATE).from_select(columns, from_ti).on_duplicate_key_update(**changed)
    else:
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
        statement = insert(_STATE).from_select(columns, from_ti).on_conflict_do_update(
            index_elements=["dag_run_id", "task_id", "map_index", "key"], set_=changed)
    # An INSERT's row count is what says whether the TI exists; drivers drop it unless asked.
    return statement.execution_options(preserve_rowcount=True)


def delete_key(ti_id: uuid.UUID, key: str, *, connection: Connection | None = None) -> bool:
    """Deleting a key that is not there is fine (False); an unknown TI is NotFound."""
    connection = _connection(connection)
    if connection.execute(_DELETE_KEY, {"ti_id": ti_id, "key": key}).rowcount > 0:
        return True
    find_task_instance(ti_id, connection)  # NotFound for an unknown TI
    return False


def _clear_scope(scope: TaskInstanceScope, all_map_indices: bool) -> tuple:
    dag_run, task, map_index = _in_scope(scope)
    return (dag_run, task) if all_map_indices else (dag_run, task, map_index)


def clear(scope: TaskInstanceScope, *, all_map_indices: bool = False, connection: Connection | None = None) -> int:
    """Every key of this task instance (this map index only, unless asked for all)."""
    statement = delete(TaskState).where(*_clear_scope(scope, all_map_indices))
    return _connection(connection).execute(statement).rowcount


def rows_to_clear(scope: TaskInstanceScope, *, all_map_indices: bool = False) -> list:
    """What ``clear`` would delete (expired rows included): map_index, key, value, expires_at."""
    return db.session.execute(
        select(TaskState.map_index, TaskState.key, TaskState.value, TaskState.expires_at)
        .where(*_clear_scope(scope, all_map_indices))
    ).all()
