"""The worker API for asset keys, under ``/execution/store/asset``: the same paths, query
parameters, bodies and answers as Airflow's execution API, so its Task SDK client
(``client.asset_state_store``) works unchanged. An asset is named by ``name`` (``/by-name/``)
or ``uri`` (``/by-uri/``) in the query string, where ``/``, ``?``, ``#`` and spaces survive.

Any valid worker token may call these, as in Airflow: a task instance's (its keys record that
task instance as their writer) or a watcher's. With ``asset_access = declared`` a task
instance may only use the assets its task declared as inlets or outlets (403 otherwise)."""

from __future__ import annotations

import uuid

from flask import Response, current_app, g, request

from .. import store
from ..auth import tokens
from ..errors import InvalidInput, KeyNotFound, Unauthenticated
from ..transactions import committed_on_connection
from . import schemas
from .http import bearer_token, request_body
from .openapi import documented
from .responses import no_content
from .worker import bp

ASSET_ERRORS = (401, 403, 404, 422, 503)


def authorized_asset(by: str, *, with_key: bool) -> tuple[store.Address, dict, str | None]:
    """401 for a bad token before anything else; then the query parameters (422 naming the
    one missing, empty or not allowed); the address and names the store takes, and the key."""
    try:
        token = tokens.verify(bearer_token())
    except tokens.TokenInvalid as exc:
        raise Unauthenticated(f"Invalid auth token: {exc}") from None
    other = "uri" if by == "name" else "name"
    if other in request.args:
        raise InvalidInput(other, f"name the asset by {by} or by {other}, not both (this is the by-{by} route)")
    identifier = request.args.get(by, "")
    if not identifier:
        raise InvalidInput(by, "is required and must not be empty")
    key = None
    if with_key:
        key = request.args.get("key", "")
        if not key:
            raise InvalidInput("key", "is required and must not be empty")
    g.worker_token = token
    watcher = token.watcher
    ti_id = None if watcher is not None else _token_task_instance(token)
    declared = current_app.config["TASKSTORE"].asset_access == "declared"
    address = store.asset_address(by, "watcher" if watcher is not None else "task", declared)
    return address, store.worker_names(by, identifier, ti_id=ti_id, watcher=watcher), key


def _token_task_instance(token: tokens.WorkerToken) -> uuid.UUID:
    try:
        return uuid.UUID(token.ti_id)
    except ValueError:
        raise Unauthenticated("Invalid auth token: its subject is neither a task instance nor a watcher") from None


def _register(by: str) -> None:
    base = f"/store/asset/by-{by}"

    @documented(f"Read an asset's key (asset by {by})", tag="Worker: assets", ok={200: schemas.ValueBody},
                errors=ASSET_ERRORS, query=(by, "key"), required=(by, "key"))
    def get_value():
        address, names, key = authorized_asset(by, with_key=True)
        try:
            value_json = committed_on_connection(
                lambda connection: store.read_value_json(address, key, connection=connection, **names),
                read_only=True)
        except KeyNotFound:
            g.key_not_there_yet = True
            raise
        return Response('{"value":' + value_json + "}", mimetype="application/json")

    @documented(f"Create or overwrite an asset's key (asset by {by})", tag="Worker: assets",
                body=schemas.AssetValueBody, errors=(413, *ASSET_ERRORS), query=(by, "key"), required=(by, "key"))
    def put_value():
        address, names, key = authorized_asset(by, with_key=True)
        encoded = store.parse_asset_put_body(request_body())
        store.warn_if_oversized(f"asset {names['identifier']!r}", key, encoded,
                                current_app.config["TASKSTORE"].max_value_bytes)
        committed_on_connection(
            lambda connection: store.write(address, key, encoded, None, connection=connection, **names))
        return no_content()

    @documented(f"Delete an asset's key (a missing key is fine; asset by {by})", tag="Worker: assets",
                errors=ASSET_ERRORS, query=(by, "key"), required=(by, "key"))
    def delete_value():
        address, names, key = authorized_asset(by, with_key=True)
        committed_on_connection(lambda connection: store.delete_key(address, key, connection=connection, **names))
        return no_content()

    @documented(f"Clear every key of an asset (asset by {by})", tag="Worker: assets", errors=ASSET_ERRORS,
                query=(by,), required=(by,))
    def clear():
        address, names, _key = authorized_asset(by, with_key=False)
        committed_on_connection(lambda connection: store.clear_addressed(address, connection=connection, **names))
        return no_content()

    bp.add_url_rule(f"{base}/value", f"asset_by_{by}_get", get_value, methods=["GET"])
    bp.add_url_rule(f"{base}/value", f"asset_by_{by}_put", put_value, methods=["PUT"])
    bp.add_url_rule(f"{base}/value", f"asset_by_{by}_delete", delete_value, methods=["DELETE"])
    bp.add_url_rule(f"{base}/clear", f"asset_by_{by}_clear", clear, methods=["DELETE"])


for _by in ("name", "uri"):
    _register(_by)
