"""JSON error bodies, one shape for the whole API.

Airflow's execution API answers ``{"detail": {"reason": ..., "message": ...}}`` and its
client parses errors only when the content type is exactly ``application/json``; every
error here has that shape, with ``field`` added when one input is to blame."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from ..errors import ServiceError


def error_response(status: int, reason: str, message: str, *, field: str | None = None,
                   headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    detail: dict[str, Any] = {"reason": reason, "message": message}
    if field is not None:
        detail["field"] = field
    detail.update(extra or {})
    response = jsonify(detail=detail)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def service_error_response(error: ServiceError) -> Response:
    headers: dict[str, str] = {"Retry-After": "1"} if error.status == 503 else {}
    extra = None
    current = getattr(error, "current", None)
    if current is not None:
        # A refused edit shows what the key holds now, so the caller can decide again.
        extra = {"current": {
            "value": current.value, "version": current.version,
            "expires_at": None if current.expires_at is None else current.expires_at.isoformat(),
        }}
        headers["ETag"] = current.etag
    return error_response(error.status, error.reason, error.message, field=error.field, headers=headers, extra=extra)


def no_content() -> Response:
    return Response(status=204)
