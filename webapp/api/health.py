"""``/health`` for load balancers: 200 when this process can reach the database."""

from flask import Blueprint
from sqlalchemy import text

from ..extensions import db
from . import schemas
from .openapi import documented

bp = Blueprint("health", __name__)


@bp.get("/health")
@documented("Is this process able to reach its database?", tag="Service", ok={200: schemas.Health}, errors=(503,))
def health():
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}
