"""Reading API requests the same way everywhere: the key in the path, the body with its hard
size limit, the bearer credentials."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import store
from ..errors import InvalidInput, Unauthenticated


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
