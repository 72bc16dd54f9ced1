"""Errors the service raises for a caller to see. Each carries an HTTP status, a short
machine-readable reason and a message a person can act on; the APIs turn them into JSON,
the UI into a message beside the field."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    reason = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    status = 422
    reason = "validation_error"

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}", field=field)
        self.problem = problem


class NotFound(ServiceError):
    status = 404
    reason = "not_found"


class KeyNotFound(NotFound):
    """A key that is absent or expired; ``field`` tells it apart from an unknown task instance."""

    def __init__(self, key: str):
        super().__init__(f"Task state store key {key!r} not found", field="key")


class Conflict(ServiceError):
    status = 409
    reason = "conflict"


class DatabaseUnavailable(ServiceError):
    status = 503
    reason = "database_unavailable"


class Unauthenticated(ServiceError):
    status = 401
    reason = "unauthenticated"


class Forbidden(ServiceError):
    status = 403
    reason = "forbidden"


class PreconditionFailed(ServiceError):
    """The key changed since the caller read it (If-Match / a stale edit form)."""

    status = 412
    reason = "precondition_failed"

    def __init__(self, message: str, current=None):
        super().__init__(message)
        self.current = current
