"""Reading requests the same way across the JSON API: the key in the path, the body
with its hard size limit, the bearer credentials."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import PathConverter

from .. import store
from ..errors import InvalidInput, Unauthenticated


class KeyConverter(PathConverter):
    """The rest of the path, whatever it holds. Werkzeug's ``path`` matches no key that starts
    with "/" or holds a newline, and merges "//" by redirecting; a key may be any of these
    (control characters then get validation's clear 422)."""

    regex = "(?s:.+)"
    part_isolating = False


def key_from_path(key: str) -> str:
    """The validated key. WSGI passes the path as bytes (latin-1) and werkzeug turns bytes that
    are not UTF-8 into U+FFFD, which would merge different keys: refuse them instead."""
    try:
        request.environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidInput("key", "is not valid UTF-8 once percent-decoded") from None
    return store.validate_key(key)


def request_body() -> bytes:
    """The whole body, or 413. Werkzeug refuses a Content-Length over the limit up front but
    quietly cuts a body sent without one (chunked) at the limit: one byte more means too large."""
    data = request.get_data(cache=False)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return data


def bearer_token() -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("Missing auth token: send Authorization: Bearer <token>")
    return credentials.strip()


def json_object() -> dict[str, Any]:
    body = store.parse_json(request_body())
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    return body


INT_MAX = 2**31 - 1  # the columns are 32-bit: a larger number would overflow in the database


def int_arg(name: str, default: int | None, minimum: int, maximum: int = INT_MAX, *,
            empty_is_default: bool = False) -> int | None:
    """An integer query parameter within bounds, or 422 naming it. Browser forms send empty
    fields as ``name=``; the UI counts those as absent, the API as a mistake."""
    raw = request.args.get(name)
    if raw is None or (empty_is_default and raw == ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, f"must be an integer, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidInput(name, f"must be between {minimum} and {maximum}")
    return value
