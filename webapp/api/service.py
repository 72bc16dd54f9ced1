"""The service API under ``/api/v2/service``, for API keys with the ``service`` role (and
admins): keys addressed by identity, the way Airflow's storage backend receives them — a task
instance by (dag_id, run_id, task_id, map_index), an asset by name or URI — with the run, task
instance or asset created on first write; and task instance states reported by a scheduler.

Values travel as JSON text and are stored and returned byte for byte (``value_json``): the
storage-backend interface hands over JSON text and expects the same text back. A read answers
the stored text itself as the body. Nothing else is open to a service key."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from .. import assets, runs, store
from ..auth import api_keys, roles, visibility
from ..errors import InvalidInput, NotFound, Unauthenticated
from ..http import int_arg
from ..transactions import committed
from . import schemas
from .admin import task_instance_fields
from .core import out, parse_body
from .http import bearer_token
from .openapi import documented
from .responses import no_content

bp = Blueprint("service", __name__, url_prefix="/api/v2/service")

TASK = "/tasks/<dag_id>/<run_id>/<task_id>"
TASK_ADDRESS = store.TASK_INSTANCE_BY_IDENTITY


@bp.before_request
def authenticate() -> None:
    key = bearer_token()
    record = api_keys.authenticate(key)
    if record is None:
        raise Unauthenticated("Invalid API key")
    g.principal = api_keys.principal(record)
    g.principal.require(roles.SERVICE)
    visibility.check_route(g.principal, request.view_args)


def _identity(dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": int_arg("map_index", -1, -1)}


def _value_json(body, whose: str, key: str) -> str:
    """The text as given, once it is a value (JSON, not null, no NaN). Values over the size
    limit are stored with a warning in the log, as from a worker: these are workers' writes
    relayed, and a running task must not break on a soft limit."""
    encoded = store.encode_value(store.parse_json(body.value_json, "value_json"))
    store.warn_if_oversized(whose, key, encoded, current_app.config["TASKSTORE"].max_value_bytes)
    return body.value_json


def _stored_text(value_json: str) -> Response:
    return Response(value_json, mimetype="application/json")


# --- task keys ------------------------------------------------------------------------------------


@bp.get(TASK + "/keys/<storekey:key>", merge_slashes=False)
@documented("A task instance's key, by identity: the stored JSON text as the body", tag="Service", ok={200: schemas.StoredValue}, errors=(401, 403, 404, 422), query=("map_index",))
def get_task_key(dag_id: str, run_id: str, task_id: str, key: str):
    names = _identity(dag_id, run_id, task_id)
    return _stored_text(committed(lambda: store.read_value_json(TASK_ADDRESS, key, **names)))


@bp.put(TASK + "/keys/<storekey:key>", merge_slashes=False)
@documented("Create or overwrite a task instance's key, by identity (the run and task instance are created when missing)", tag="Service", body=schemas.ServicePutBody, errors=(401, 403, 413, 422), query=("map_index",))
def put_task_key(dag_id: str, run_id: str, task_id: str, key: str):
    names = _identity(dag_id, run_id, task_id)
    body = parse_body(schemas.ServicePutBody)
    value_json = _value_json(body, f"task instance {dag_id}/{run_id}/{task_id}", key)
    expires_at = store.admin_expiry(body.expires_at, current_app.config["TASKSTORE"].default_retention_days)

    def write() -> None:
        try:
            store.write(TASK_ADDRESS, key, value_json, expires_at, **names)
        except NotFound:  # the first write of this task instance: make it, then write
            runs.ensure_task_instance(**names)
            store.write(TASK_ADDRESS, key, value_json, expires_at, **names)

    committed(write)
    return no_content()


@bp.delete(TASK + "/keys/<storekey:key>", merge_slashes=False)
@documented("Delete a task instance's key, by identity (nothing to delete is fine)", tag="Service", errors=(401, 403, 422), query=("map_index",))
def delete_task_key(dag_id: str, run_id: str, task_id: str, key: str):
    names = _identity(dag_id, run_id, task_id)
    try:
        committed(lambda: store.delete_key(TASK_ADDRESS, key, **names))
    except NotFound:
        pass  # no such task instance: nothing to delete
    return no_content()


@bp.delete(TASK + "/keys")
@documented("Clear a task instance's keys, by identity (all_map_indices: every map index)", tag="Service", ok={200: schemas.ClearResult}, errors=(401, 403, 422), query=("map_index", "all_map_indices"))
def clear_task_keys(dag_id: str, run_id: str, task_id: str):
    names = _identity(dag_id, run_id, task_id)
    every = request.args.get("all_map_indices", "false").lower() in ("true", "1")

    def clear() -> int:
        try:
            scope = store.find(TASK_ADDRESS, **names)
        except NotFound:
            return 0
        return store.clear(scope.every_map_index() if every else scope)

    return out(schemas.ClearResult, deleted=committed(clear))


@bp.put(TASK + "/state")
@documented("Report a task instance's state and try (the run and task instance are created when missing)", tag="Service", body=schemas.ServiceStateBody, ok={200: schemas.TaskInstanceOut}, errors=(401, 403, 413, 422), query=("map_index",))
def report_state(dag_id: str, run_id: str, task_id: str):
    names = _identity(dag_id, run_id, task_id)
    body = parse_body(schemas.ServiceStateBody)
    state = runs.parse_state(body.state)
    clear_on_success = current_app.config["TASKSTORE"].clear_on_success

    def report() -> dict[str, Any]:
        ti = runs.ensure_task_instance(**names)
        return task_instance_fields(runs.report_state(ti, state, body.try_number, clear_on_success=clear_on_success))

    return out(schemas.TaskInstanceOut, **committed(report))


# --- asset keys -----------------------------------------------------------------------------------


def _asset_names(*, with_key: bool) -> tuple[str, str | None, str | None, str | None]:
    """(by, name, uri, key): by name when given, else by URI."""
    name, uri = request.args.get("name") or None, request.args.get("uri") or None
    if name is None and uri is None:
        raise InvalidInput("name", "is required (or uri)")
    key = None
    if with_key:
        key = request.args.get("key", "")
        if not key:
            raise InvalidInput("key", "is required and must not be empty")
    return ("name" if name is not None else "uri"), name, uri, key


def _asset_address(by: str, name: str | None, uri: str | None) -> tuple[store.Address, dict[str, Any]]:
    identifier = name if by == "name" else uri
    if not g.principal.assets.everything and not g.principal.assets.allows(_asset_name(name, uri)):
        raise store.asset_keys.asset_not_found(by, identifier)  # as for an asset that does not exist
    address = store.asset_address(by, "api", False)
    return address, {"identifier": identifier, "writer_name": g.principal.name}


def _asset_name(name: str | None, uri: str | None) -> str:
    """The name the asset has, or would be registered under (its URI, when only that is given)."""
    if name is not None:
        return name
    try:
        return assets.by_name_or_uri(uri=uri).name
    except NotFound:
        return uri or ""


@bp.get("/assets/value")
@documented("An asset's key by name (or uri): the stored JSON text as the body", tag="Service", ok={200: schemas.StoredValue}, errors=(401, 403, 404, 422), query=("name", "uri", "key"))
def get_asset_key():
    by, name, uri, key = _asset_names(with_key=True)
    address, names = _asset_address(by, name, uri)
    return _stored_text(committed(lambda: store.read_value_json(address, key, **names)))


@bp.put("/assets/value")
@documented("Create or overwrite an asset's key by name and/or uri (the asset is registered when missing)", tag="Service", body=schemas.ServiceAssetPutBody, errors=(401, 403, 404, 409, 413, 422), query=("name", "uri", "key"))
def put_asset_key():
    by, name, uri, key = _asset_names(with_key=True)
    value_json = _value_json(parse_body(schemas.ServiceAssetPutBody), f"asset {name or uri!r}", key)
    address, names = _asset_address(by, name, uri)

    def write() -> None:
        try:
            store.write(address, key, value_json, None, **names)
        except NotFound:
            assets.ensure(name=name, uri=uri, visible=g.principal.assets)
            store.write(address, key, value_json, None, **names)

    committed(write)
    return no_content()


@bp.delete("/assets/value")
@documented("Delete an asset's key by name or uri (nothing to delete is fine)", tag="Service", errors=(401, 403, 422), query=("name", "uri", "key"))
def delete_asset_key():
    by, name, uri, key = _asset_names(with_key=True)
    try:
        address, names = _asset_address(by, name, uri)
        committed(lambda: store.delete_key(address, key, **names))
    except NotFound:
        pass
    return no_content()


@bp.delete("/assets/clear")
@documented("Clear an asset's keys by name or uri", tag="Service", ok={200: schemas.ClearResult}, errors=(401, 403, 422), query=("name", "uri"))
def clear_asset_keys():
    by, name, uri, _key = _asset_names(with_key=False)

    def clear() -> int:
        try:
            address, names = _asset_address(by, name, uri)
            return store.clear_addressed(address, **names)
        except NotFound:
            return 0

    return out(schemas.ClearResult, deleted=committed(clear))
