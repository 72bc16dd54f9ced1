"""The second kind of scope: an asset's keys, shared by every task and watcher that reads or
writes the asset, across runs. They never expire and record who last wrote them.

Workers name an asset by its name or its URI (as Airflow's execution API does), and write as
a task instance (their token's) or as a watcher (a token minted for a named watcher): one
``Address`` for each combination, plus the variants for ``asset_access = declared``, where a
task instance may only use the assets its task declared as inlets or outlets."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import Connection, and_, bindparam, exists, literal, select

from ..auth.name_patterns import EVERYTHING, NamePatterns
from ..errors import Forbidden, NotFound
from ..models import Asset, AssetState, TaskAsset, TaskInstance
from .scopes import Address, Scope, ScopeKind, ti_not_found

WRITER_COLUMNS = ("written_by_kind", "written_by_dag_id", "written_by_run_id", "written_by_task_id",
                  "written_by_map_index", "written_by_name")


# A task of a DAG the reader may not see, told without its ids: they would name that DAG.
HIDDEN_TASK_WRITER = {"kind": "task", "hidden": True}


def describe_writer(values: tuple, reader_dags: NamePatterns = EVERYTHING) -> dict[str, Any] | None:
    """The API's ``last_updated_by``: ``{"kind": "task", dag_id, run_id, task_id, map_index}`` for a
    task instance, ``{"kind": "watcher" | "api", "name"}`` otherwise. ``reader_dags``: the DAGs
    whoever reads it may see; a task of another DAG reads as ``HIDDEN_TASK_WRITER``."""
    kind, dag_id, run_id, task_id, map_index, name = values
    if kind is None:
        return None
    if kind == "task":
        if not reader_dags.allows(dag_id):
            return dict(HIDDEN_TASK_WRITER)
        return {"kind": "task", "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}
    return {"kind": kind, "name": name}


def written_by(kind: str, *, name: str | None = None, dag_id: str | None = None, run_id: str | None = None,
               task_id: str | None = None, map_index: int | None = None) -> dict[str, Any]:
    return dict(zip(WRITER_COLUMNS, (kind, dag_id, run_id, task_id, map_index, name), strict=True))


ASSET_KEYS = ScopeKind(
    name="asset",
    table=AssetState.__table__,
    owner=("asset_id",),
    labels=("asset_id", "asset_name"),
    expires=False,
    sqlite_search_index="asset_state_key_search",
    writer_columns=WRITER_COLUMNS,
    written_by_actor=lambda actor: written_by("api", name=actor),
    describe_writer=describe_writer,
    permission_label="asset_name",
)


@dataclass(frozen=True)
class AssetScope(Scope):
    """The keys of one asset."""

    kind: ClassVar[ScopeKind] = ASSET_KEYS

    asset_id: int
    name: str
    uri: str
    # Who reads these keys: the DAGs they may see, so a writer from another DAG is not named
    # to them (``describe_writer``). It changes what is shown, not which keys these are.
    reader_dags: NamePatterns = field(default=EVERYTHING, compare=False)

    def row_values(self) -> dict[str, Any]:
        return {"asset_id": self.asset_id, "asset_name": self.name}

    def describe_writer(self, values: tuple) -> dict[str, Any] | None:
        return describe_writer(values, self.reader_dags)


def name_hash(text: str) -> str:
    """How assets are looked up by name or URI (up to 1,500 characters, indexed by their hash)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scope_of_asset(asset: Asset, *, reader_dags: NamePatterns) -> AssetScope:
    """An asset's keys as the person or API key seeing ``reader_dags`` reads them (required:
    the keys say which task wrote them, and a route must not forget whose eyes those are)."""
    return AssetScope(asset.id, asset.name, asset.uri, reader_dags)


# --- addresses ------------------------------------------------------------------------------

_ASSET = Asset.__table__
_TI = TaskInstance.__table__
_DECLARED = TaskAsset.__table__
BY = {"name": _ASSET.c.name_hash, "uri": _ASSET.c.uri_hash}


def asset_not_found(by: str, identifier: str) -> NotFound:
    return NotFound(f"Asset with {by}={identifier!r} not found", field=by)  # Airflow's wording


def _find_asset(connection: Connection, by: str, identifier: str):
    return connection.execute(select(_ASSET.c.id, _ASSET.c.name_hash).where(BY[by] == name_hash(identifier))).first()


@cache
def asset_address(by: str, writer: str, declared: bool) -> Address:
    """How a worker names an asset: ``by`` name or uri; writing as a ``task`` (its token's task
    instance, which must exist), a ``watcher`` or an ``api`` key (a service), the latter two by
    ``writer_name``; ``declared``: only an asset the task instance's task declared."""
    source = _ASSET
    where = BY[by] == bindparam("identifier_hash")
    if writer == "task":
        source = _ASSET.join(_TI, _TI.c.id == bindparam("ti_id", type_=_TI.c.id.type))
        writer_values = {"written_by_kind": literal("task"), "written_by_dag_id": _TI.c.dag_id,
                         "written_by_run_id": _TI.c.run_id, "written_by_task_id": _TI.c.task_id,
                         "written_by_map_index": _TI.c.map_index, "written_by_name": literal(None)}
    else:  # a watcher's token, or a service's API key: recorded by name
        writer_values = {**{column: literal(None) for column in WRITER_COLUMNS},
                         "written_by_kind": literal(writer), "written_by_name": bindparam("writer_name")}
    if declared and writer == "task":  # a watcher is no task: it declares nothing
        where = and_(where, exists().where(_DECLARED.c.dag_run_id == _TI.c.dag_run_id,
                                           _DECLARED.c.task_id == _TI.c.task_id,
                                           _DECLARED.c.asset_name_hash == _ASSET.c.name_hash))

    def not_found(connection: Connection, identifier: str, **names: Any):
        asset = _find_asset(connection, by, identifier)
        if asset is None:
            return asset_not_found(by, identifier)
        if writer == "task" and connection.execute(select(_TI.c.id).where(_TI.c.id == names["ti_id"])).first() is None:
            return ti_not_found(names["ti_id"])
        return Forbidden(f"Asset with {by}={identifier!r} is not an inlet or outlet of this task "
                         "(asset access is limited to declared assets)", field=by)

    def bind(identifier: str, **names: Any) -> dict[str, Any]:
        return {"identifier_hash": name_hash(identifier), **names}

    return Address(
        kind=ASSET_KEYS,
        source=source,
        where=where,
        values={"asset_id": _ASSET.c.id, "asset_name": _ASSET.c.name},
        writer=writer_values,
        not_found=not_found,
        scope_from_row=lambda row, **_names: AssetScope(row.asset_id, row.asset_name, ""),
        bind=bind,
    )


def worker_names(by: str, identifier: str, *, ti_id: uuid.UUID | None, watcher: str | None) -> dict[str, Any]:
    """The names an asset address takes, for a worker's token (a task instance or a watcher)."""
    return {"identifier": identifier, **({"ti_id": ti_id} if ti_id is not None else {"writer_name": watcher})}
