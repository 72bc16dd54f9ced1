"""Export and import: a deployment's runs, task instances and their tries, keys (with expiry
and version), assets and their keys, and history, as JSON lines; optionally people and API
keys too. Moves a deployment between databases (SQLite to PostgreSQL, say).

The dump starts with a header naming the schema revision it came from; an import refuses a
dump from a newer schema. Rows are matched by what identifies them, never by database ids
(which differ between databases): a run by (dag_id, run_id), a task key by its task instance
and name, an asset by its name, a history row by all it says. An import adds what is missing
and leaves what is there, in batches of one transaction each: running it twice changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text, update

from .errors import InvalidInput
from .extensions import db
from .models import (
    ApiKey,
    Asset,
    AssetState,
    AuditEvent,
    DagRun,
    KeyChange,
    TaskAsset,
    TaskInstance,
    TaskInstanceHistory,
    TaskState,
    User,
)
from .transactions import committed

FORMAT = "taskstore-dump"
VERSION = 1
BATCH = 1000


@dataclass(frozen=True)
class Kind:
    """One type of record: its model, the fields it carries, and what identifies it."""

    name: str
    model: type
    fields: tuple[str, ...]
    identity: tuple[str, ...]  # fields (after resolving references) that identify a row
    credentials: bool = False
    dag_scoped: bool = True


RUN_FIELDS = ("dag_id", "run_id")
TI_FIELDS = (*RUN_FIELDS, "task_id", "map_index")
KINDS = (
    Kind("user", User, ("username", "password_hash", "role", "created_at", "disabled_at"), ("username",),
         credentials=True, dag_scoped=False),
    Kind("api_key", ApiKey, ("name", "prefix", "key_hash", "role", "created_at", "revoked_at", "last_used_at"),
         ("key_hash",), credentials=True, dag_scoped=False),
    Kind("audit_event", AuditEvent, ("at", "actor", "action", "subject", "details"),
         ("at", "actor", "action", "subject"), credentials=True, dag_scoped=False),
    Kind("asset", Asset, ("name", "uri", "group_name", "name_hash", "uri_hash", "created_at"), ("name_hash",),
         dag_scoped=False),
    Kind("asset_key", AssetState, ("asset_name", "key", "value", "version", "updated_at", "written_by_kind",
                                   "written_by_dag_id", "written_by_run_id", "written_by_task_id",
                                   "written_by_map_index", "written_by_name"), ("asset_id", "key"), dag_scoped=False),
    Kind("dag_run", DagRun, (*RUN_FIELDS, "state", "logical_date", "start_date", "end_date", "created_at"), RUN_FIELDS),
    Kind("task_instance", TaskInstance, ("id", *TI_FIELDS, "state", "try_number", "start_date", "end_date",
                                         "updated_at", "map_key"), TI_FIELDS),
    Kind("task_try", TaskInstanceHistory, ("id", *TI_FIELDS, "try_number", "state", "start_date", "end_date",
                                           "map_key"), ("id",)),
    Kind("task_asset", TaskAsset, (*RUN_FIELDS, "task_id", "asset_name_hash", "direction"),
         ("dag_run_id", "task_id", "asset_name_hash", "direction")),
    Kind("task_key", TaskState, (*TI_FIELDS, "key", "value", "version", "updated_at", "expires_at", "map_key",
                                 "written_by_try", "parked_from"), ("dag_run_id", "task_id", "map_index", "key")),
    Kind("key_change", KeyChange, ("changed_at", "actor", "action", "scope_kind", *TI_FIELDS, "asset_name", "key",
                                   "old_value", "new_value", "old_expires_at", "new_expires_at", "try_number"),
         ("changed_at", "actor", "action", "scope_kind", "key", "dag_id", "run_id", "task_id", "map_index",
          "asset_name")),
)
BY_NAME = {kind.name: kind for kind in KINDS}
DATETIME_FIELDS = {"created_at", "disabled_at", "revoked_at", "last_used_at", "at", "updated_at", "logical_date",
                   "start_date", "end_date", "expires_at", "changed_at", "old_expires_at", "new_expires_at"}


def schema_revision() -> str | None:
    return db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _dag_condition(model, pattern: str | None):
    """DAG ids matching a shell-style pattern (``etl_*``, ``ml_?``): ``*`` and ``?`` are the
    wildcards, ``%`` and ``_`` match themselves."""
    if not pattern:
        return True
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return model.dag_id.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def export(*, dag_pattern: str | None = None, credentials: bool = False) -> Iterator[str]:
    """The dump's lines: the header, then every record, streamed."""
    yield json.dumps({"type": "header", "format": FORMAT, "version": VERSION, "schema": schema_revision(),
                      "dag_pattern": dag_pattern, "credentials": credentials})
    for kind in KINDS:
        if kind.credentials and not credentials:
            continue
        # A declared asset names its run by the run's row: the dump names it by (dag_id, run_id).
        via_run = kind.name == "task_asset"
        columns = [getattr(DagRun if via_run and name in RUN_FIELDS else kind.model, name) for name in kind.fields]
        statement = select(*columns)
        if via_run:
            statement = statement.join(DagRun, DagRun.id == TaskAsset.dag_run_id)
        if kind.dag_scoped and kind.name != "key_change":
            statement = statement.where(_dag_condition(DagRun if via_run else kind.model, dag_pattern))
        elif kind.name == "key_change" and dag_pattern:
            statement = statement.where(or_(KeyChange.scope_kind == "asset", _dag_condition(KeyChange, dag_pattern)))
        statement = statement.order_by(*columns[:2])
        for row in db.session.execute(statement.execution_options(yield_per=BATCH)):
            yield json.dumps({"type": kind.name, **{name: _encode(value) for name, value in zip(kind.fields, row,
                                                                                                strict=True)}},
                             ensure_ascii=False)


# --- import ---------------------------------------------------------------------------------------


@dataclass
class Imported:
    added: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.added.values())


def check_header(line: str, current_schema: str | None) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        raise InvalidInput("dump", "does not start with a Task Store dump header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInput("dump", "is not a Task Store dump (no taskstore-dump header on its first line)")
    if header.get("version") != VERSION:
        raise InvalidInput("dump", f"is format version {header.get('version')}; this Task Store reads {VERSION}")
    dumped, ours = header.get("schema") or "", current_schema or ""
    if dumped > ours:
        raise InvalidInput("dump", f"comes from a newer schema ({dumped}) than this database's ({ours}): "
                                   "upgrade this Task Store first")
    return header


class Importer:
    """Adds records in batches, resolving runs and assets by what identifies them."""

    def __init__(self, on_batch: Callable[[int], None] | None = None):
        self.result = Imported()
        self.on_batch = on_batch or (lambda count: None)
        self.run_ids: dict[tuple[str, str], int] = {}
        self.asset_ids: dict[str, int] = {}

    def load(self, lines: Iterable[str]) -> Imported:
        lines = iter(lines)
        check_header(next(lines, ""), committed(schema_revision))
        batch: list[dict[str, Any]] = []
        current: str | None = None
        for number, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                kind = BY_NAME[record.pop("type")]
            except (ValueError, KeyError, TypeError, AttributeError):
                raise InvalidInput("dump", f"line {number} is not a record of a Task Store dump") from None
            if kind.name != current or len(batch) >= BATCH:
                self._flush(current, batch)
                batch, current = [], kind.name
            batch.append(record)
        self._flush(current, batch)
        return self.result

    def _flush(self, kind_name: str | None, batch: list[dict[str, Any]]) -> None:
        if not batch or kind_name is None:
            return
        kind = BY_NAME[kind_name]
        added = committed(lambda: self._add(kind, batch))
        self.result.added[kind.name] = self.result.added.get(kind.name, 0) + added
        self.result.present[kind.name] = self.result.present.get(kind.name, 0) + len(batch) - added
        self.on_batch(len(batch))

    def _add(self, kind: Kind, batch: list[dict[str, Any]]) -> int:
        rows = [self._resolve(kind, {name: _decode(name, record.get(name)) for name in kind.fields})
                for record in batch]
        parked = [row for row in rows if kind.name == "task_key" and row.get("parked_from") is not None]
        rows = [row for row in rows if not (kind.name == "task_key" and row.get("parked_from") is not None)]
        added = sum(_add_parked(row) for row in parked)
        if not rows:
            return added
        identity = [getattr(kind.model, name) for name in kind.identity]
        wanted = {tuple(row[name] for name in kind.identity) for row in rows}
        existing = set()
        for chunk in _chunks(list(wanted), 200):
            existing |= {tuple(found) for found in db.session.execute(
                select(*identity).where(or_(*(and_(*(column == value if value is not None else column.is_(None)
                                                   for column, value in zip(identity, key, strict=True)))
                                             for key in chunk))))}
        missing = [row for row in rows if tuple(row[name] for name in kind.identity) not in existing]
        if missing:
            db.session.execute(kind.model.__table__.insert(), missing)
        return added + len(missing)

    def _resolve(self, kind: Kind, row: dict[str, Any]) -> dict[str, Any] | None:
        """Database ids for the references a record makes by name."""
        if kind.name in ("task_instance", "task_try", "task_asset", "task_key"):
            row["dag_run_id"] = self._run_id(row["dag_id"], row["run_id"])
            if kind.name == "task_asset":
                del row["dag_id"], row["run_id"]
        if kind.name == "asset_key":
            row["asset_id"] = self._asset_id(row["asset_name"])
        if kind.name == "key_change" and row.get("asset_name") is not None:
            row["asset_id"] = self._asset_id(row["asset_name"])
        return row

    def _run_id(self, dag_id: str, run_id: str) -> int:
        key = (dag_id, run_id)
        if key not in self.run_ids:
            found = db.session.execute(
                select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
            if found is None:
                raise InvalidInput("dump", f"refers to run {run_id!r} of DAG {dag_id!r}, which it does not contain")
            self.run_ids[key] = found[0]
        return self.run_ids[key]

    def _asset_id(self, name: str) -> int:
        if name not in self.asset_ids:
            found = db.session.execute(select(Asset.id).where(Asset.name == name)).first()
            if found is None:
                raise InvalidInput("dump", f"refers to asset {name!r}, which it does not contain")
            self.asset_ids[name] = found[0]
        return self.asset_ids[name]


def _add_parked(row: dict[str, Any]) -> int:
    """A key parked off the positions (set aside to make room): identified by where it came
    from, and given a place of its own, -2 - its new id, as when it was parked."""
    found = db.session.execute(select(TaskState.id).where(
        TaskState.dag_run_id == row["dag_run_id"], TaskState.task_id == row["task_id"],
        TaskState.parked_from == row["parked_from"], TaskState.key == row["key"],
        TaskState.map_key.is_not_distinct_from(row["map_key"]))).first()
    if found is not None:
        return 0
    key = TaskState(**{**row, "map_index": -1_000_000_000})
    db.session.add(key)
    db.session.flush()
    db.session.execute(update(TaskState).where(TaskState.id == key.id).values(map_index=-2 - key.id))
    return 1


def _decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATETIME_FIELDS:
        return datetime.fromisoformat(value)
    if name == "id":
        return uuid.UUID(value)
    return value


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

