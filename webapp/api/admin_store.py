"""Admin API routes for a task instance's stored keys, under
``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store``.

Edits carry optimistic concurrency: ``GET`` of one key sends an ``ETag``; ``PUT``,
``PATCH`` and ``DELETE`` with ``If-Match`` answer 412 when a worker wrote the key since.
The store validates, edits and records the history; these routes parse and answer."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from .. import runs, store
from ..transactions import committed
from . import core, schemas
from .core import actor, bp, if_match, map_index_arg, new_value, out, paging, parse_body, require_role
from .openapi import documented
from .responses import no_content

BASE = "/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>/state-store"


def entry_fields(entry: store.Entry) -> dict[str, Any]:
    return {"key": entry.key, "value": entry.value, "updated_at": entry.updated_at,
            "expires_at": entry.expires_at, "version": entry.version,
            "written_by_try": (entry.written_by or {}).get("try_number")}


def entry_response(entry: store.Entry, status: int = 200):
    return core.entry_response(schemas.Entry, entry_fields(entry), entry, status)


def scope(dag_id: str, run_id: str, task_id: str) -> store.TaskInstanceScope:
    return store.scope_of(runs.get_task_instance(dag_id, run_id, task_id, map_index_arg()))


@bp.get(BASE)
@documented("List a task instance's keys, ordered by key", tag="Stored keys", ok={200: schemas.EntryList}, errors=(401, 404, 422), query=("map_index", "limit", "offset"))
def list_keys(dag_id: str, run_id: str, task_id: str):
    limit, offset = paging()
    entries, total = store.list_entries(scope(dag_id, run_id, task_id), limit=limit, offset=offset)
    return out(schemas.EntryList, task_state_store=[entry_fields(entry) for entry in entries], total_entries=total)


@bp.get(BASE + "/<storekey:key>", merge_slashes=False)
@documented("One key, with an ETag", tag="Stored keys", ok={200: schemas.Entry}, errors=(401, 404, 422), query=("map_index",))
def get_key(dag_id: str, run_id: str, task_id: str, key: str):
    return entry_response(store.get_entry(scope(dag_id, run_id, task_id), key))


@bp.put(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Create or replace a key and its expiry", tag="Stored keys", body=schemas.AdminPutBody, ok={200: schemas.Entry, 201: schemas.Entry}, errors=(401, 403, 404, 412, 413, 422), query=("map_index",), headers=("If-Match",))
def put_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    body = parse_body(schemas.AdminPutBody)
    encoded = new_value(body.value)
    expires_at = store.admin_expiry(body.expires_at, current_app.config["TASKSTORE"].default_retention_days)
    change = committed(lambda: store.put_entry(target, key, encoded, expires_at, actor=actor(), if_match=if_match()))
    return entry_response(change.after, 200 if change.before else 201)


@bp.patch(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Change a key's value, keep its expiry", tag="Stored keys", body=schemas.AdminPatchBody, ok={200: schemas.Entry}, errors=(401, 403, 404, 412, 413, 422), query=("map_index",), headers=("If-Match",))
def patch_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    encoded = new_value(parse_body(schemas.AdminPatchBody).value)
    change = committed(lambda: store.patch_value(target, key, encoded, actor=actor(), if_match=if_match()))
    return entry_response(change.after)


@bp.delete(BASE + "/<storekey:key>", merge_slashes=False)
@documented("Delete a key", tag="Stored keys", errors=(401, 403, 404, 412, 422), query=("map_index",), headers=("If-Match",))
def delete_key(dag_id: str, run_id: str, task_id: str, key: str):
    require_role("editor")
    target = scope(dag_id, run_id, task_id)
    committed(lambda: store.delete_entry(target, key, actor=actor(), if_match=if_match()))
    return no_content()


@bp.delete(BASE)
@documented("Clear a task instance's keys", tag="Stored keys", ok={200: schemas.ClearResult}, errors=(401, 403, 404, 422), query=("map_index", "all_map_indices"))
def clear_keys(dag_id: str, run_id: str, task_id: str):
    require_role("editor")
    if request.args.get("all_map_indices", "false").lower() in ("true", "1"):
        target = store.scope_of(runs.any_task_instance(dag_id, run_id, task_id)).every_map_index()
    else:
        target = scope(dag_id, run_id, task_id)
    deleted = committed(lambda: store.clear_entries(target, actor=actor()))
    return out(schemas.ClearResult, deleted=deleted)
