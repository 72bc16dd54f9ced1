"""``/metrics`` for Prometheus: every worker process's figures (``webapp.metrics``), this
process's connection pool, and the last successful ``taskstore clean`` runs from the database.

``metrics = on``: anyone may read it; ``api-key``: an API key with the metrics role (or an
admin's); ``off``: 404."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g
from sqlalchemy.exc import SQLAlchemyError

from .. import clean_runs, metrics
from ..auth import api_keys, roles
from ..errors import NotFound, Unauthenticated
from ..extensions import db
from .http import bearer_token

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)


def _authorize() -> None:
    mode = current_app.config["TASKSTORE"].metrics
    if mode == "off" or not metrics.enabled():
        raise NotFound("Metrics are off here (TASKSTORE_METRICS=off)")
    if mode == "api-key":
        record = api_keys.authenticate(bearer_token())
        if record is None:
            raise Unauthenticated("Invalid API key")
        g.principal = api_keys.principal(record)
        g.principal.require(roles.METRICS)


@bp.get("/metrics")
def scrape():
    _authorize()
    try:
        runs = clean_runs.latest()
    except SQLAlchemyError as exc:  # the processes' own figures are still worth a scrape
        log.warning("metrics: could not read the clean runs: %s", exc)
        runs = []
    db.session.close()  # the scrape's own connection goes back before the pool is read
    metrics.serve_process(db.engine.pool)
    body, content_type = metrics.exposition(metrics.clean_families(runs))
    return Response(body, content_type=content_type)
