"""The worker API under ``/execution``: wire-compatible with Airflow's execution API
task-state-store routes, so Airflow's Task SDK client works against it unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, g

from .. import store
from ..auth import tokens
from ..errors import Forbidden, InvalidInput, KeyNotFound, Unauthenticated
from ..transactions import committed_on_connection
from . import schemas
from .http import bearer_token, request_body
from .openapi import documented
from .responses import no_content

TASK_INSTANCE = store.TASK_INSTANCE_BY_ID

bp = Blueprint("worker", __name__, url_prefix="/execution")


def authorized_task_instance(raw_ti_id: str) -> uuid.UUID:
    """401 for a bad token, 403 for another TI's token, in that order, before any SQL, so nothing
    is read or written for a caller who may not. The store answers 404 for an unknown TI."""
    try:
        token = tokens.verify(bearer_token())
    except tokens.TokenInvalid as exc:
        raise Unauthenticated(f"Invalid auth token: {exc}") from None
    try:
        ti_id = uuid.UUID(raw_ti_id)
        allowed = ti_id == uuid.UUID(token.ti_id)
    except ValueError:
        allowed = False
    if not allowed:
        raise Forbidden("Token subject does not match task instance ID")
    g.worker_token = token  # only a token used for its own task instance is refreshed
    return ti_id


@bp.after_request
def refresh_token(response: Response) -> Response:
    token = g.get("worker_token")
    # A fresh token only with an answer that succeeded for the token's own task instance: a
    # refused call, or one for a task instance that no longer exists, gets nothing new to use.
    # A key that is not there yet is a read that worked (Airflow's client returns the default):
    # a task polling for it keeps its access.
    succeeded = 200 <= response.status_code < 300 or g.get("key_not_there_yet", False)
    if token is not None and succeeded and token.needs_refresh(datetime.now(UTC)):
        fresh, _ = tokens.issue(token.ti_id)
        response.headers["Refreshed-API-Token"] = fresh
    return response


@bp.get("/store/ti/<ti_id>/<storekey:key>", merge_slashes=False)
@documented("Read a key", tag="Worker", ok={200: schemas.ValueBody}, errors=(401, 403, 404, 422, 503))
def get_key(ti_id: str, key: str):
    ti_id = authorized_task_instance(ti_id)
    try:
        value_json = committed_on_connection(
            lambda connection: store.read_value_json(TASK_INSTANCE, key, connection=connection, ti_id=ti_id),
            read_only=True)
    except KeyNotFound:
        g.key_not_there_yet = True
        raise
    # The stored text goes out as written: no decode and re-encode, so 3 stays 3 and 3.0 stays 3.0.
    return Response('{"value":' + value_json + "}", mimetype="application/json")


@bp.put("/store/ti/<ti_id>/<storekey:key>", merge_slashes=False)
@documented("Create or overwrite a key", tag="Worker", body=schemas.WorkerPutBody, errors=(401, 403, 404, 413, 422, 503))
def put_key(ti_id: str, key: str):
    ti_id = authorized_task_instance(ti_id)
    encoded, expires_at = store.parse_worker_put_body(request_body())
    store.warn_if_oversized(f"task instance {ti_id}", key, encoded, current_app.config["TASKSTORE"].max_value_bytes)
    committed_on_connection(
        lambda connection: store.write(TASK_INSTANCE, key, encoded, expires_at, connection=connection, ti_id=ti_id))
    return no_content()


@bp.delete("/store/ti/<ti_id>/<storekey:key>", merge_slashes=False)
@documented("Delete a key (a missing key is fine)", tag="Worker", errors=(401, 403, 404, 422, 503))
def delete_key(ti_id: str, key: str):
    ti_id = authorized_task_instance(ti_id)
    committed_on_connection(lambda connection: store.delete_key(TASK_INSTANCE, key, connection=connection, ti_id=ti_id))
    return no_content()


@bp.delete("/store/ti/<ti_id>")
@documented("Clear every key of the task instance (this map index)", tag="Worker", errors=(401, 403, 404, 503))
def clear(ti_id: str):
    ti_id = authorized_task_instance(ti_id)
    committed_on_connection(lambda connection: store.clear_addressed(TASK_INSTANCE, connection=connection, ti_id=ti_id))
    return no_content()


@bp.route("/store/ti/<ti_id>/", methods=["GET", "PUT", "DELETE"])
def empty_key(ti_id: str):
    authorized_task_instance(ti_id)
    raise InvalidInput("key", "must not be empty")
