"""``/health`` for load balancers: 200 when this process reaches its database within the
health deadline, 503 naming the check that failed otherwise."""

from __future__ import annotations

import time

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .. import deadlines
from ..extensions import db
from . import schemas
from .openapi import documented
from .responses import error_response

bp = Blueprint("health", __name__)


@bp.get("/health")
@documented("Is this process able to reach its database?", tag="Service", ok={200: schemas.Health}, errors=(503,))
def health():
    seconds = current_app.config["TASKSTORE"].health_timeout_seconds
    started = time.monotonic()
    try:
        with deadlines.deadline(seconds), db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except PoolTimeout:
        return _unavailable("database_pool", "every pooled connection is busy", started)
    except SQLAlchemyError as exc:
        return _unavailable("database", str(getattr(exc, "orig", exc)).splitlines()[0][:200], started)
    return {"status": "ok", "checks": {"database": "ok"}}


def _unavailable(check: str, problem: str, started: float):
    took = time.monotonic() - started
    response = error_response(503, "unhealthy", f"{check}: {problem} (after {took:.1f} s)", field=check,
                              headers={"Retry-After": "1"}, extra={"checks": {check: problem}})
    return response
