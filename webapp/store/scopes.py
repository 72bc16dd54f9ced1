"""Scopes: whose keys these are.

A key belongs to one scope, and every rule of the store (validation, worker reads and
writes, versioned edits, history, search, cleanup) is written once against these
definitions, never against one kind's columns:

- a ``ScopeKind`` says where a kind's keys live: its table, the columns that name one scope
  (the table's unique key is those plus ``key``), the columns that describe a key to someone
  who found it outside its scope's page (search, history, ``clean --dry-run``), and whether
  its keys expire;
- a scope object (``TaskInstanceScope``) is one scope of a kind, resolved: the values of
  those columns;
- an ``Address`` is how a worker names a scope in a request (a task instance's id), resolved
  inside the worker's one SQL statement rather than by a lookup before it.

A new kind of scope is a table (a migration), a ``ScopeKind``, a scope class, its addresses
and its routes.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, FromClause, Table, and_, bindparam, or_

from ..errors import NotFound, ServiceError
from ..models import TaskInstance, TaskState


@dataclass(frozen=True, eq=False)
class ScopeKind:
    name: str
    table: Table
    owner: tuple[str, ...]  # the columns naming one scope
    labels: tuple[str, ...]  # the columns that say whose a key is, wherever it is shown
    expires: bool  # do keys of this kind carry an expiry?
    sqlite_search_index: str | None = None  # FTS5 trigram table over ``key`` (migration 0006)
    # Newest first, in an order PostgreSQL and MariaDB can stream from an index (search).
    newest_first: tuple[str, ...] = ("id",)
    # Columns recording who last wrote a key, set by every write: a worker's address gives
    # them, an edit by a person or tool gets ``written_by_actor(actor)``; ``describe_writer``
    # turns their values back into the API's ``last_updated_by``.
    writer_columns: tuple[str, ...] = ()
    written_by_actor: Callable[[str], dict[str, Any]] = field(default=lambda actor: {})
    describe_writer: Callable[[tuple], dict[str, Any] | None] = field(default=lambda values: None)
    # Columns a key must share with its scope to be handed to it (NULL matching NULL): a row
    # that differs is kept but set aside (task keys: the mapped index's input, ``map_key``).
    fence: tuple[str, ...] = ()
    # The label a person's or API key's name patterns limit (``auth.name_patterns``).
    permission_label: str = "dag_id"

    @property
    def row_columns(self) -> tuple[str, ...]:
        """Every column a new row takes from its scope."""
        return tuple(dict.fromkeys(self.owner + self.labels + self.fence))

    def fenced(self, values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
        """The fence's conditions against a scope's values (expressions or plain values)."""
        return [self.column(name).is_not_distinct_from(values[name]) for name in self.fence]

    def column(self, name: str):
        return self.table.c[name]


TASK_KEYS = ScopeKind(
    name="task",
    table=TaskState.__table__,
    owner=("dag_run_id", "task_id", "map_index"),
    labels=("dag_id", "run_id", "task_id", "map_index"),
    expires=True,
    sqlite_search_index="task_state_key_search",
    # Newest run first, then newest key: PostgreSQL walks an index in that order with or without a
    # DAG (task_state_dag_idx, or the unique key's, then an incremental sort); by key id alone it
    # would walk every newer DAG's keys to reach an old DAG's.
    newest_first=("dag_run_id", "id"),
    writer_columns=("written_by_try",),
    written_by_actor=lambda actor: {"written_by_try": None},
    describe_writer=lambda values: None if values[0] is None else {"try_number": values[0]},
    fence=("map_key",),
)


class Scope:
    """One resolved scope. Subclasses are frozen dataclasses naming ``kind`` and giving the
    values of ``kind.row_columns``."""

    kind: ClassVar[ScopeKind]

    def row_values(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe_writer(self, values: tuple) -> dict[str, Any] | None:
        """Who last wrote a key of this scope, from ``kind.writer_columns``, as its reader may see it."""
        return self.kind.describe_writer(values)

    def condition(self) -> ColumnElement[bool]:
        """This scope's keys, for any statement over the kind's table (its fence included)."""
        values = self.row_values()
        return and_(*(self.kind.column(name) == values[name] for name in self.kind.owner),
                    *self.kind.fenced(values))


@dataclass(frozen=True)
class TaskInstanceScope(Scope):
    """The keys of one task instance: its run, task and map index (the run row's id stands for
    dag_id and run_id). ``all_map_indices`` widens it to every map index of the task, for a
    clear."""

    kind: ClassVar[ScopeKind] = TASK_KEYS

    ti_id: uuid.UUID
    dag_run_id: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    map_key: str | None = None
    all_map_indices: bool = field(default=False, compare=False)
    with_set_aside: bool = field(default=False, compare=False)  # also keys written under another map key

    def row_values(self) -> dict[str, Any]:
        return {"dag_run_id": self.dag_run_id, "dag_id": self.dag_id, "run_id": self.run_id,
                "task_id": self.task_id, "map_index": self.map_index, "map_key": self.map_key}

    def condition(self) -> ColumnElement[bool]:
        if self.all_map_indices:
            return and_(TaskState.dag_run_id == self.dag_run_id, TaskState.task_id == self.task_id)
        if self.with_set_aside:
            return and_(TaskState.dag_run_id == self.dag_run_id, TaskState.task_id == self.task_id,
                        or_(TaskState.map_index == self.map_index, TaskState.parked_from == self.map_index))
        return super().condition()

    def whole_position(self) -> TaskInstanceScope:
        """Every key at this task instance's position, those set aside included (a clear)."""
        return dataclasses.replace(self, with_set_aside=True)

    def every_map_index(self) -> TaskInstanceScope:
        return dataclasses.replace(self, all_map_indices=True)

    def set_aside(self) -> ColumnElement[bool]:
        """Keys of this task instance's position written under another map key: kept, not handed
        out. Those still at the position, and those parked off it to make room."""
        return and_(TaskState.dag_run_id == self.dag_run_id, TaskState.task_id == self.task_id, or_(
            and_(TaskState.map_index == self.map_index, ~TaskState.map_key.is_not_distinct_from(self.map_key)),
            TaskState.parked_from == self.map_index))


def scope_of(ti: TaskInstance) -> TaskInstanceScope:
    return TaskInstanceScope(ti.id, ti.dag_run_id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.map_key)


# --- addresses: how workers name a scope ----------------------------------------------------


@dataclass(frozen=True, eq=False)
class Address:
    """A worker's way of naming a scope, resolved in SQL: ``source`` is the table (or join) to
    look in, ``where`` picks the one row, and ``values`` gives, for each of ``kind.row_columns``,
    the expression on ``source`` that holds it; ``writer`` gives the kind's writer columns.
    ``bind`` turns the names a route has (a task instance id, an asset name) into the
    statements' bind parameters. On a miss, ``not_found`` may look (with the connection) for
    which of the names is missing. The worker statements are built from this once
    (``store.access``)."""

    kind: ScopeKind
    source: FromClause
    where: ColumnElement[bool]
    values: Mapping[str, ColumnElement]
    not_found: Callable[..., ServiceError]
    scope_from_row: Callable[..., Scope]
    writer: Mapping[str, ColumnElement] = field(default_factory=dict)
    bind: Callable[..., dict[str, Any]] = field(default=lambda **names: names)


def ti_not_found(ti_id: uuid.UUID | str) -> NotFound:
    return NotFound(f"Task instance {ti_id} not found")  # Airflow's wording


def parse_ti_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ti_not_found(raw) from None


_TI = TaskInstance.__table__
TASK_INSTANCE_BY_ID = Address(
    kind=TASK_KEYS,
    source=_TI,
    where=_TI.c.id == bindparam("ti_id", type_=_TI.c.id.type),
    values={name: _TI.c[name] for name in TASK_KEYS.row_columns},
    writer={"written_by_try": _TI.c.try_number},
    not_found=lambda _connection, ti_id: ti_not_found(ti_id),
    scope_from_row=lambda row, ti_id: TaskInstanceScope(ti_id, row.dag_run_id, row.dag_id, row.run_id,
                                                        row.task_id, row.map_index, row.map_key),
)


def task_instance_not_found(dag_id: str, run_id: str, task_id: str, map_index: int) -> NotFound:
    return NotFound(f"Task instance {task_id!r} (map index {map_index}) of run {run_id!r} of DAG {dag_id!r} not found")


# A service names a task instance by its identity (Airflow's storage backend receives exactly
# that): one statement still, through the task instance's unique (dag, run, task, map index).
TASK_INSTANCE_BY_IDENTITY = Address(
    kind=TASK_KEYS,
    source=_TI,
    where=and_(_TI.c.dag_id == bindparam("dag_id"), _TI.c.run_id == bindparam("run_id"),
               _TI.c.task_id == bindparam("task_id"), _TI.c.map_index == bindparam("map_index")),
    values={name: _TI.c[name] for name in TASK_KEYS.row_columns},
    writer={"written_by_try": _TI.c.try_number},
    not_found=lambda _connection, **names: task_instance_not_found(**names),
    scope_from_row=lambda row, **_names: TaskInstanceScope(None, row.dag_run_id, row.dag_id, row.run_id,
                                                           row.task_id, row.map_index, row.map_key),
)
