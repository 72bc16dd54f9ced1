"""How errors reach the caller: JSON for the API (``/execution``, ``/api``), a page for
browsers. Database outages become a quick 503; anything unexpected rolls the session back."""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .api.responses import error_response, service_error_response
from .errors import DatabaseUnavailable, ServiceError, Unauthenticated
from .extensions import db

log = logging.getLogger(__name__)
API_PREFIXES = ("/execution", "/api/")
DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES) or request.path in ("/health", "/metrics")


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        db.session.rollback()
        if wants_json():
            response = service_error_response(error)
            if isinstance(error, Unauthenticated):
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return _page(error.status, error.reason.replace("_", " ").capitalize(), error.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        message = f"The request body is larger than the limit of {limit} bytes"
        if wants_json():
            return error_response(413, "payload_too_large", message)
        return _page(413, "Too large", message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not wants_json():
            return _page(error.code or 500, error.name, error.description or "")
        reason = (error.name or "error").lower().replace(" ", "_")
        response = error_response(error.code or 500, reason, error.description or error.name)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    def database_down(error: Exception):
        db.session.rollback()
        log.warning("database unavailable: %s", error)
        return service_error(DatabaseUnavailable("The database is unavailable or busy; retry shortly"))

    for error_class in DATABASE_DOWN:
        app.register_error_handler(error_class, database_down)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response | tuple[str, int]:
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal_error", "Internal server error; the change was not saved")
        return _page(500, "Internal server error", "Something went wrong; nothing was changed.")
