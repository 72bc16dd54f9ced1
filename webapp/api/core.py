"""The admin API's shared core: its blueprint, who may call (API keys and logged-in people,
with roles), paging, and bodies read and written through the pydantic models of ``schemas``.
Route modules (``admin``, ``admin_store``) hold routes only."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, request
from pydantic import BaseModel, ValidationError

from .. import store
from ..auth import api_keys, roles, users, visibility
from ..errors import Forbidden, InvalidInput, Unauthenticated
from ..extensions import csrf
from ..http import int_arg
from .http import bearer_token, request_body

bp = Blueprint("admin", __name__, url_prefix="/api/v2")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Model = TypeVar("Model", bound=BaseModel)


@bp.before_request
def authenticate() -> None:
    """An API key in the Authorization header, or the session of a logged-in person. The
    session rides on a cookie the browser sends by itself, so its changes need the CSRF token."""
    if "Authorization" in request.headers:
        key = bearer_token()
        record = api_keys.authenticate(key)
        if record is None:
            hint = " (worker tokens are not accepted here)" if key.count(".") == 2 else ""
            raise Unauthenticated(f"Invalid API key{hint}")
        g.principal = api_keys.principal(record)
        if record.role in roles.NARROW_KEY_ROLES:
            raise Forbidden(f"API key {record.name!r} has the {record.role} role: it may use "
                            f"{roles.NARROW_KEY_ROLES[record.role]} only")
    else:
        user = users.logged_in()
        if user is None:
            raise Unauthenticated("Send an admin API key (Authorization: Bearer <key>) or log in")
        if request.method not in SAFE_METHODS:
            csrf.protect()
        g.principal = users.principal(user)
    visibility.check_route(g.principal, request.view_args)


def require_role(role: str) -> None:
    g.principal.require(role)


def actor() -> str:
    """Who the history names for this request's changes."""
    return g.principal.name


def paging() -> tuple[int, int]:
    return int_arg("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE), int_arg("offset", 0, 0)


def map_index_arg() -> int:
    return int_arg("map_index", -1, -1)


# --- bodies -------------------------------------------------------------------------------


def parse_body(model: type[Model]) -> Model:
    """The request body as ``model``: strict JSON first (NaN refused), then the model's shape.
    The first problem becomes a 422 naming the field by its path (``tasks[0].task_id``)."""
    data = store.parse_json(request_body())
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid_input(model, exc.errors()[0]) from None


def _invalid_input(model: type[BaseModel], error: dict[str, Any]) -> InvalidInput:
    location = [part for part in error["loc"] if not _is_union_tag(part)]
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    if error["type"] == "extra_forbidden":
        return InvalidInput(field, f"is not a field of this body (allowed: {', '.join(model.model_fields)})")
    if error["type"] == "missing":
        return InvalidInput(field, "is required")
    message = error["msg"].removeprefix("Value error, ")
    return InvalidInput(field or "body", re.sub(r"^(Input|String|List|Value) should", "must", message))


def _is_union_tag(part: Any) -> bool:
    # pydantic names the member of a union it tried: "literal['default']", "datetime", "function-before[...]"
    return isinstance(part, str) and ("[" in part or part in ("datetime", "str", "int", "none", "bool"))


def out(model: type[Model], **fields: Any) -> dict[str, Any]:
    """A response body, through its model: what the OpenAPI document promises is what is sent."""
    return model.model_validate(fields).model_dump(mode="json")


# --- stored keys, of any kind of scope -----------------------------------------------------------


def entry_response(model: type[Model], fields: dict[str, Any], entry: store.Entry, status: int = 200):
    """One entry with its ETag (the version an If-Match names)."""
    return out(model, **fields), status, {"ETag": entry.etag}


def new_value(value: Any) -> str:
    """A value people and tools set: the store's rules, and the soft size limit workers only get warned about."""
    encoded = store.encode_value(value)
    store.check_value_size(encoded, current_app.config["TASKSTORE"].max_value_bytes)
    return encoded


def if_match() -> str | None:
    return request.headers.get("If-Match")
