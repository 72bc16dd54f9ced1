"""JSON error bodies, one shape for the whole API.

Airflow's execution API answers ``{"detail": {"reason": ..., "message": ...}}`` and its
client parses errors only when the content type is exactly ``application/json``; every
error here has that shape, with ``field`` added when one input is to blame."""

from __future__ import annotations

from flask import Response, jsonify

from ..errors import ServiceError


def error_response(status: int, reason: str, message: str, *, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    detail = {"reason": reason, "message": message}
    if field is not None:
        detail["field"] = field
    response = jsonify(detail=detail)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def service_error_response(error: ServiceError) -> Response:
    headers = {"Retry-After": "1"} if error.status == 503 else None
    return error_response(error.status, error.reason, error.message, field=error.field, headers=headers)


def no_content() -> Response:
    return Response(status=204)
