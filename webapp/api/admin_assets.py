"""Admin API routes for assets (``/api/v2/assets``) and their keys
(``/api/v2/assets/{asset_id}/state-store``): registration by a scheduler or an admin, listings,
watcher tokens, and the same versioned edits as task keys (``ETag`` / ``If-Match``), without
expiry: asset keys never expire."""

from __future__ import annotations

from typing import Any

from flask import g, request

from .. import assets, store
from ..auth import tokens
from ..models import Asset
from ..transactions import committed
from . import core, schemas
from .core import actor, bp, if_match, new_value, out, paging, parse_body, require_role
from .openapi import documented
from .responses import no_content

ASSET = "/assets/<rowid:asset_id>"
KEYS = ASSET + "/state-store"


def asset_fields(asset: Asset) -> dict[str, Any]:
    return {"id": asset.id, "name": asset.name, "uri": asset.uri, "group": asset.group_name,
            "created_at": asset.created_at}


def entry_fields(entry: store.Entry) -> dict[str, Any]:
    return {"key": entry.key, "value": entry.value, "updated_at": entry.updated_at,
            "last_updated_by": entry.written_by, "version": entry.version}


def entry_response(entry: store.Entry, status: int = 200):
    return core.entry_response(schemas.AssetEntry, entry_fields(entry), entry, status)


def scope(asset_id: int) -> store.AssetScope:
    return store.scope_of_asset(assets.get(asset_id), reader_dags=g.principal.dags)


# --- assets -------------------------------------------------------------------------------------


@bp.post("/assets")
@documented("Register an asset", tag="Assets", body=schemas.AssetCreate, ok={201: schemas.AssetOut}, errors=(401, 403, 404, 409, 413, 422))
def create_asset():
    require_role("admin")
    body = parse_body(schemas.AssetCreate)
    g.principal.require_new_asset(body.name)
    asset = committed(lambda: assets.create(body.name, body.uri, body.group, visible=g.principal.assets))
    return out(schemas.AssetOut, **asset_fields(asset)), 201


@bp.get("/assets")
@documented("List assets by name, each with its key count and latest write", tag="Assets", ok={200: schemas.AssetList}, errors=(401, 422), query=("name_pattern", "uri_pattern", "limit", "offset"))
def list_assets():
    limit, offset = paging()
    rows, total = assets.listing(visible=g.principal.assets, reader_dags=g.principal.dags, limit=limit, offset=offset,
                                 name_pattern=request.args.get("name_pattern"),
                                 uri_pattern=request.args.get("uri_pattern"))
    listed = [{**asset_fields(row.asset), "key_count": row.key_count, "last_updated_at": row.last_write,
               "last_updated_by": row.last_written_by} for row in rows]
    return out(schemas.AssetList, assets=listed, total_entries=total)


@bp.get(ASSET)
@documented("One asset", tag="Assets", ok={200: schemas.AssetOut}, errors=(401, 404))
def get_asset(asset_id: int):
    return out(schemas.AssetOut, **asset_fields(assets.get(asset_id)))


@bp.delete(ASSET)
@documented("Delete an asset and its keys", tag="Assets", errors=(401, 403, 404))
def delete_asset(asset_id: int):
    require_role("admin")
    committed(lambda: assets.delete_asset(asset_id))
    return no_content()


@bp.post("/assets/watcher-token")
@documented("Issue a token for a watcher: asset keys only, its writes recorded as the watcher's", tag="Assets", body=schemas.WatcherTokenCreate, ok={200: schemas.TokenOut}, errors=(401, 403, 422))
def issue_watcher_token():
    require_role("admin")
    g.principal.require_unrestricted("A watcher token (every asset's keys)")
    token, expires_at = tokens.issue_for_watcher(parse_body(schemas.WatcherTokenCreate).watcher)
    return out(schemas.TokenOut, token=token, expires_at=expires_at)


# --- an asset's keys ------------------------------------------------------------------------------


@bp.get(KEYS)
@documented("List an asset's keys, ordered by key", tag="Asset keys", ok={200: schemas.AssetEntryList}, errors=(401, 404, 422), query=("limit", "offset"))
def list_asset_keys(asset_id: int):
    limit, offset = paging()
    entries, total = store.list_entries(scope(asset_id), limit=limit, offset=offset)
    return out(schemas.AssetEntryList, asset_state_store=[entry_fields(entry) for entry in entries],
               total_entries=total)


@bp.get(KEYS + "/<storekey:key>", merge_slashes=False)
@documented("One asset key, with an ETag", tag="Asset keys", ok={200: schemas.AssetEntry}, errors=(401, 404, 422))
def get_asset_key(asset_id: int, key: str):
    return entry_response(store.get_entry(scope(asset_id), key))


@bp.put(KEYS + "/<storekey:key>", merge_slashes=False)
@documented("Create or replace an asset key", tag="Asset keys", body=schemas.AdminPatchBody, ok={200: schemas.AssetEntry, 201: schemas.AssetEntry}, errors=(401, 403, 404, 412, 413, 422), headers=("If-Match",))
def put_asset_key(asset_id: int, key: str):
    require_role("editor")
    target = scope(asset_id)
    encoded = new_value(parse_body(schemas.AdminPatchBody).value)
    change = committed(lambda: store.put_entry(target, key, encoded, None, actor=actor(), if_match=if_match()))
    return entry_response(change.after, 200 if change.before else 201)


@bp.patch(KEYS + "/<storekey:key>", merge_slashes=False)
@documented("Change an asset key's value", tag="Asset keys", body=schemas.AdminPatchBody, ok={200: schemas.AssetEntry}, errors=(401, 403, 404, 412, 413, 422), headers=("If-Match",))
def patch_asset_key(asset_id: int, key: str):
    require_role("editor")
    target = scope(asset_id)
    encoded = new_value(parse_body(schemas.AdminPatchBody).value)
    change = committed(lambda: store.patch_value(target, key, encoded, actor=actor(), if_match=if_match()))
    return entry_response(change.after)


@bp.delete(KEYS + "/<storekey:key>", merge_slashes=False)
@documented("Delete an asset key", tag="Asset keys", errors=(401, 403, 404, 412, 422), headers=("If-Match",))
def delete_asset_key(asset_id: int, key: str):
    require_role("editor")
    target = scope(asset_id)
    committed(lambda: store.delete_entry(target, key, actor=actor(), if_match=if_match()))
    return no_content()


@bp.delete(KEYS)
@documented("Clear an asset's keys", tag="Asset keys", ok={200: schemas.ClearResult}, errors=(401, 403, 404))
def clear_asset_keys(asset_id: int):
    require_role("editor")
    target = scope(asset_id)
    return out(schemas.ClearResult, deleted=committed(lambda: store.clear_entries(target, actor=actor())))
