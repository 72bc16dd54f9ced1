"""Admin API for a task instance's stored keys (contract section 6), under
``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store``.

Edits carry optimistic concurrency: ``GET`` of one key sends an ``ETag``; ``PUT``,
``PATCH`` and ``DELETE`` with ``If-Match`` answer 412 when a worker wrote the key since."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from .. import history, runs, store
from ..errors import InvalidInput
from ..transactions import committed
from .admin import bp, int_arg, iso, only_fields, paging, require_role
from .http import json_object, key_from_path
from . import schemas
from .openapi import documented
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


def actor() -> str:
    return g.principal.name


def new_value(body: dict) -> str:
    if "value" not in body:
        raise InvalidInput("value", "is required")
    encoded = store.encode_value(body["value"])
    store.check_value_size(encoded, current_app.config["TASKSTORE"].max_value_bytes)
    return encoded


@bp.get(BASE)
@documented("List a task instance's keys, ordered by key", tag="Stored keys", ok={200: schemas.EntryList}, errors=(401, 404, 422), query=("map_index", "limit", "offset"))
def list_keys(dag_id: str, run_id: str, task_id: str):
    limit, offset = paging()
    entries, total = store.list_entries(scope(dag_id, run_id, task_id), limit=limit, offset=offset)
    return {"task_state_store": [entry_json(entry) for entry in entries], "total_entries": total}


@bp.get(BASE + "/<storekey:key>", merge_slashes=False)
@documented("One key, with an ETag", tag="Stored keys", ok={200: schemas.Entry}, errors=(401, 404, 422), query=("map_index",))
def get_key(dag_id: str, run_id: str, task_id: str, key: str):
    return entry_response(store.get_entry(scope(dag_id, run_id, task_id), key))


@bp.put(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Create or replace a key and its expiry", tag="Stored keys", body=schemas.AdminPutBody, ok={200: schemas.Entry, 201: schemas.Entry}, errors=(401, 403, 404, 412, 413, 422), query=("map_index",), headers=("If-Match",))
def put_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    key = key_from_path(key)
    body = json_object()
    only_fields(body, ("value", "expires_at"))
    encoded = new_value(body)
    expires_at = store.parse_admin_expiry(
        body.get("expires_at", "default"), current_app.config["TASKSTORE"].default_retention_days
    )

    def put():
        change = store.put_entry(target, key, encoded, expires_at, if_match=request.headers.get("If-Match"))
        history.record(actor(), "set", target, key, change)
        return change

    change = committed(put)
    return entry_response(change.after, 200 if change.before else 201)


@bp.patch(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Change a key's value, keep its expiry", tag="Stored keys", body=schemas.AdminPatchBody, ok={200: schemas.Entry}, errors=(401, 403, 404, 412, 413, 422), query=("map_index",), headers=("If-Match",))
def patch_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    body = json_object()
    only_fields(body, ("value",))
    encoded = new_value(body)

    def patch():
        change = store.patch_value(target, key, encoded, if_match=request.headers.get("If-Match"))
        history.record(actor(), "set", target, key, change)
        return change

    return entry_response(committed(patch).after)


@bp.delete(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Delete a key", tag="Stored keys", errors=(401, 403, 404, 412, 422), query=("map_index",), headers=("If-Match",))
def delete_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)

    def remove():
        change = store.delete_entry(target, key, if_match=request.headers.get("If-Match"))
        if change.before is not None:
            history.record(actor(), "delete", target, key, change)

    committed(remove)
    return no_content()


@bp.delete(BASE)
@documented("Clear a task instance's keys", tag="Stored keys", ok={200: schemas.ClearResult}, errors=(401, 403, 404, 422), query=("map_index", "all_map_indices"))
def clear_keys(dag_id: str, run_id: str, task_id: str):
    require_role("editor")
    all_map_indices = request.args.get("all_map_indices", "false").lower() in ("true", "1")
    if all_map_indices:
        target = store.scope_of(runs.any_task_instance(dag_id, run_id, task_id))
    else:
        target = scope(dag_id, run_id, task_id)
    deleted = committed(lambda: history.clear_recorded(actor(), target, all_map_indices=all_map_indices))
    return {"deleted": deleted}
