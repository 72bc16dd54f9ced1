"""Admin API for a task instance's stored keys (contract section 6), under
``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store``.

Edits carry optimistic concurrency: ``GET`` of one key sends an ``ETag``; ``PUT``,
``PATCH`` and ``DELETE`` with ``If-Match`` answer 412 when a worker wrote the key since."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from .. import runs, store
from ..errors import InvalidInput
from ..transactions import committed
from .admin import bp, int_arg, iso, json_object, only_fields, paging, require_role
from .responses import no_content

BASE = "/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>/state-store"


def entry_json(entry: store.Entry) -> dict[str, Any]:
    return {
        "key": entry.key, "value": entry.value, "updated_at": iso(entry.updated_at),
        "expires_at": iso(entry.expires_at), "version": entry.version,
    }


def entry_response(entry: store.Entry, status: int = 200):
    return entry_json(entry), status, {"ETag": entry.etag}


def scope(dag_id: str, run_id: str, task_id: str) -> store.TaskInstanceScope:
    map_index = int_arg("map_index", -1, -1)
    return store.scope_of(runs.get_task_instance(dag_id, run_id, task_id, map_index))


def new_value(body: dict) -> str:
    if "value" not in body:
        raise InvalidInput("value", "is required")
    encoded = store.encode_value(body["value"])
    store.check_value_size(encoded, current_app.config["TASKSTORE"].max_value_bytes)
    return encoded


@bp.get(BASE)
def list_keys(dag_id: str, run_id: str, task_id: str):
    limit, offset = paging()
    entries, total = store.list_entries(scope(dag_id, run_id, task_id), limit=limit, offset=offset)
    return {"task_state_store": [entry_json(entry) for entry in entries], "total_entries": total}


@bp.get(BASE + "/<path:key>")
def get_key(dag_id: str, run_id: str, task_id: str, key: str):
    return entry_response(store.get_entry(scope(dag_id, run_id, task_id), key))


@bp.put(BASE + "/<path:key>")
def put_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    key = store.validate_key(key)
    body = json_object()
    only_fields(body, ("value", "expires_at"))
    encoded = new_value(body)
    expires_at = store.parse_admin_expiry(
        body.get("expires_at", "default"), current_app.config["TASKSTORE"].default_retention_days
    )
    change = committed(
        lambda: store.put_entry(target, key, encoded, expires_at, if_match=request.headers.get("If-Match"))
    )
    return entry_response(change.after, 200 if change.before else 201)


@bp.patch(BASE + "/<path:key>")
def patch_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    body = json_object()
    only_fields(body, ("value",))
    encoded = new_value(body)
    change = committed(lambda: store.patch_value(target, key, encoded, if_match=request.headers.get("If-Match")))
    return entry_response(change.after)


@bp.delete(BASE + "/<path:key>")
def delete_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    committed(lambda: store.delete_entry(target, key, if_match=request.headers.get("If-Match")))
    return no_content()


@bp.delete(BASE)
def clear_keys(dag_id: str, run_id: str, task_id: str):
    require_role("editor")
    all_map_indices = request.args.get("all_map_indices", "false").lower() in ("true", "1")
    if all_map_indices:
        target = store.scope_of(runs.any_task_instance(dag_id, run_id, task_id))
    else:
        target = scope(dag_id, run_id, task_id)
    deleted = committed(lambda: store.clear(target, all_map_indices=all_map_indices))
    return {"deleted": deleted}
