"""Assets: registration (by a scheduler or an admin), lookups, listings and deletion. An
asset's keys are the store's (``store.asset_keys``); deleting an asset deletes them with it.
Like ``store``, these functions leave the commit to the caller."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from . import store
from .auth import name_patterns
from .errors import Conflict, InvalidInput, NotFound
from .extensions import db
from .models import ASSET_NAME_LENGTH, Asset, AssetState

DIRECTIONS = ("inlet", "outlet")


def validate_identifier(field: str, value: object, *, required: bool = True) -> str:
    """An asset's name, URI or group: any text (``/``, ``?``, ``#``, spaces, any script) up to
    1,500 characters, without control characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if required and not value.strip():
        raise InvalidInput(field, "must not be empty")
    if len(value) > ASSET_NAME_LENGTH:
        raise InvalidInput(field, f"is {len(value)} characters long; the limit is {ASSET_NAME_LENGTH}")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def create(name: str, uri: str, group: str = "", *, visible: name_patterns.NamePatterns = name_patterns.EVERYTHING
           ) -> Asset:
    """Register an asset; Conflict when an asset already has that name or URI. ``visible``: the
    asset names the registering person or API key may see (``auth.name_patterns``)."""
    validate_identifier("name", name)
    validate_identifier("uri", uri)
    validate_identifier("group", group, required=False)
    for field, value, column in (("name", name, Asset.name_hash), ("uri", uri, Asset.uri_hash)):
        holder = db.session.execute(select(Asset.name).where(column == store.name_hash(value))).scalar()
        if holder is None:
            continue
        if not visible.allows(holder):
            # An asset the caller may not see holds it. Refusing is a must (taking the URI over, or
            # a second asset with it, would reach into that asset); "already exists" would confirm
            # it. Not found is what the caller hears whenever it names that URI (reads, writes, the
            # asset's pages), so this refusal tells nothing those do not, and names no asset.
            raise store.asset_keys.asset_not_found(field, value)
        raise Conflict(f"An asset with {field} {value!r} already exists", field=field)
    asset = Asset(name=name, uri=uri, group_name=group, name_hash=store.name_hash(name), uri_hash=store.name_hash(uri))
    db.session.add(asset)
    try:
        db.session.flush()
    except IntegrityError:  # registered by someone else since our check; the caller rolls back
        raise Conflict(f"An asset with name {name!r} or uri {uri!r} already exists", field="name") from None
    return asset


def asset_id_not_found(asset_id: int) -> NotFound:
    return NotFound(f"Asset with id {asset_id!r} not found", field="asset_id")


def get(asset_id: int) -> Asset:
    asset = db.session.get(Asset, asset_id)
    if asset is None:
        raise asset_id_not_found(asset_id)
    return asset


def by_name_or_uri(*, name: str | None = None, uri: str | None = None) -> Asset:
    by, identifier = ("name", name) if name is not None else ("uri", uri)
    column = Asset.name_hash if by == "name" else Asset.uri_hash
    asset = db.session.execute(select(Asset).where(column == store.name_hash(identifier or ""))).scalar_one_or_none()
    if asset is None:
        raise store.asset_keys.asset_not_found(by, identifier or "")
    return asset


def delete_asset(asset_id: int) -> int:
    """Delete an asset with its keys (ON DELETE CASCADE); how many keys went."""
    asset = get(asset_id)
    keys = db.session.execute(select(func.count()).select_from(AssetState).where(AssetState.asset_id == asset.id))
    count = keys.scalar_one()
    db.session.execute(delete(Asset).where(Asset.id == asset.id))
    return count


@dataclass(frozen=True)
class AssetRow:
    asset: Asset
    key_count: int
    last_write: datetime | None
    last_written_by: dict[str, Any] | None


def listing(*, limit: int, offset: int, reader_dags: name_patterns.NamePatterns, name_pattern: str | None = None,
            uri_pattern: str | None = None, visible=None) -> tuple[list[AssetRow], int]:
    """Assets by name, one page, each with its key count and its latest write; and the total.
    A pattern matches anywhere in the name or URI, ignoring case (``%`` and ``_`` literally).
    ``visible``: only the names those patterns allow (``auth.name_patterns``); ``reader_dags``:
    the DAGs the reader may see, whose tasks the latest write may name."""
    conditions = name_patterns.where(visible, Asset.name)
    if name_pattern:
        conditions.append(Asset.name.icontains(name_pattern, autoescape=True))
    if uri_pattern:
        conditions.append(Asset.uri.icontains(uri_pattern, autoescape=True))
    total = db.session.execute(select(func.count()).select_from(Asset).where(*conditions)).scalar_one()
    assets = db.session.execute(
        select(Asset).where(*conditions).order_by(Asset.name, Asset.id).limit(limit).offset(offset)
    ).scalars().all()
    summaries = store.asset_key_summaries([asset.id for asset in assets], reader_dags=reader_dags)
    return [AssetRow(asset, *summaries.get(asset.id, (0, None, None))) for asset in assets], total


def record_declarations(dag_run_id: int, task_id: str, inlets: list[str], outlets: list[str]) -> None:
    """The assets a task of a run declared (by name), for ``asset_access = declared``."""
    from .models import TaskAsset

    for direction, names in (("inlet", inlets), ("outlet", outlets)):
        for name in dict.fromkeys(names):
            validate_identifier(f"{direction}s", name)
            db.session.add(TaskAsset(dag_run_id=dag_run_id, task_id=task_id, asset_name_hash=store.name_hash(name),
                                     direction=direction))


def ensure(*, name: str | None, uri: str | None, visible: name_patterns.NamePatterns = name_patterns.EVERYTHING
           ) -> Asset:
    """The asset of that name (or URI), registered when missing (a service reports assets its
    scheduler knows); a missing name or URI is the other one. ``visible``: as for ``create``."""
    name, uri = name or uri, uri or name
    if not name:
        raise InvalidInput("name", "is required (or uri)")
    try:
        return by_name_or_uri(name=name)
    except NotFound:
        pass
    try:
        with db.session.begin_nested():
            return create(name, uri, visible=visible)
    except Conflict as conflict:
        try:
            return by_name_or_uri(name=name)  # registered meanwhile
        except NotFound:
            raise conflict from None  # the URI belongs to an asset of another name
