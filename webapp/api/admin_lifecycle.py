"""Admin API routes for a task instance's life: its tries, clearing ("starts over"), mapped
re-expansion with map keys, and the keys set aside by it. The rules live in
``webapp.lifecycle``, ``webapp.runs`` and the store."""

from __future__ import annotations

from typing import Any

from .. import lifecycle, runs, store
from ..transactions import committed
from . import schemas
from .admin import task_instance_fields
from .admin_store import entry_fields
from .core import actor, bp, map_index_arg, out, parse_body, require_role
from .openapi import documented
from .responses import no_content

TI = "/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>"


@bp.get(TI + "/tries")
@documented("A task instance's tries, oldest first: each its own id", tag="Runs", ok={200: schemas.TryList}, errors=(401, 404, 422), query=("map_index",))
def list_tries(dag_id: str, run_id: str, task_id: str):
    ti = runs.get_task_instance(dag_id, run_id, task_id, map_index_arg())
    tries = [{"try_number": row.try_number, "id": str(row.id), "state": row.state, "start_date": row.start_date,
              "end_date": row.end_date} for row in lifecycle.tries(ti)]
    return out(schemas.TryList, tries=tries, total_entries=len(tries))


@bp.post("/dags/<dag_id>/clearTaskInstances")
@documented("Clear task instances of a run: a new try starts over (keys discarded unless keep_task_state)", tag="Runs", body=schemas.ClearBody, ok={200: schemas.Cleared}, errors=(401, 403, 404, 413, 422))
def clear_task_instances(dag_id: str):
    require_role("admin")
    body = parse_body(schemas.ClearBody)

    def clear() -> dict[str, Any]:
        cleared = lifecycle.clear(dag_id, body.dag_run_id, task_ids=body.task_ids, map_indexes=body.map_indexes,
                                  keep_task_state=body.keep_task_state, actor=actor())
        return {"task_instances": [task_instance_fields(ti) for ti in cleared.task_instances],
                "keys_discarded": cleared.keys_discarded}

    return out(schemas.Cleared, **committed(clear))


@bp.post(TI + "/expand")
@documented("Expand a mapped task (again) over its list, with a map key per index: keys follow their item", tag="Runs", body=schemas.ExpandBody, ok={200: schemas.Expanded}, errors=(401, 403, 404, 413, 422))
def expand(dag_id: str, run_id: str, task_id: str):
    require_role("admin")
    body = parse_body(schemas.ExpandBody)

    def apply() -> dict[str, Any]:
        done = lifecycle.expand(dag_id, run_id, task_id, body.map_indexes, body.map_keys)
        return {"task_instances": [task_instance_fields(ti) for ti in done.task_instances],
                "keys_moved": done.keys_moved, "keys_set_aside": done.keys_set_aside}

    return out(schemas.Expanded, **committed(apply))


def _scope(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> store.TaskInstanceScope:
    index = map_index_arg() if map_index is None else map_index
    return store.scope_of(runs.get_task_instance(dag_id, run_id, task_id, index))


SET_ASIDE = TI + "/setAsideKeys"


@bp.get(SET_ASIDE)
@documented("Keys at this map index written under another map key: kept, not handed to the worker", tag="Stored keys", ok={200: schemas.SetAsideList}, errors=(401, 404, 422), query=("map_index",))
def list_set_aside(dag_id: str, run_id: str, task_id: str):
    listed = [{**entry_fields(entry), "map_key": map_key}
              for entry, map_key in store.list_set_aside(_scope(dag_id, run_id, task_id))]
    return out(schemas.SetAsideList, set_aside=listed, total_entries=len(listed))


@bp.delete(SET_ASIDE + "/<storekey:key>", merge_slashes=False)
@documented("Delete a key set aside", tag="Stored keys", errors=(401, 403, 404, 422), query=("map_index",))
def delete_set_aside(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    scope = _scope(dag_id, run_id, task_id)
    committed(lambda: store.delete_set_aside(scope, key, actor=actor()))
    return no_content()


@bp.post(SET_ASIDE + "/<storekey:key>/move", merge_slashes=False)
@documented("Hand a key set aside to a map index's task instance (this one: adopt it)", tag="Stored keys", body=schemas.MoveBody, ok={200: schemas.Entry}, errors=(401, 403, 404, 409, 413, 422), query=("map_index",))
def move_set_aside(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    scope = _scope(dag_id, run_id, task_id)
    target = _scope(dag_id, run_id, task_id, parse_body(schemas.MoveBody).to_map_index)
    moved = committed(lambda: store.move_set_aside(scope, key, target, actor=actor()))
    return out(schemas.Entry, **entry_fields(moved))
