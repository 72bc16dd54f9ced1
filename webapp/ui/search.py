"""Key search: keys whose name contains a text, across all task instances (or one DAG's) and
across all assets. Two tables, each paged on its own: task keys (``offset``), then asset keys
(``asset_offset``); the DAG filter narrows the task keys only."""

from __future__ import annotations

from flask import render_template, request

from .. import store
from . import bp
from .helpers import breadcrumbs, int_arg, principal

RESULTS_PER_PAGE = 50


@bp.get("/search")
def search():
    text = request.args.get("q", "")
    dag_id = request.args.get("dag_id", "").strip() or None
    offset = int_arg("offset", 0, 0)
    asset_offset = int_arg("asset_offset", 0, 0)
    hits, total, asset_hits, asset_total = [], 0, [], 0
    if text:
        sees = principal()
        hits, total = store.search_keys(text, within={"dag_id": dag_id} if dag_id else None,
                                        limit=RESULTS_PER_PAGE, offset=offset, visible=sees.dags)
        asset_hits, asset_total = store.search_keys(text, kind=store.ASSET_KEYS, limit=RESULTS_PER_PAGE,
                                                    offset=asset_offset, visible=sees.assets)
    return render_template("search.html", text=text, dag_id=dag_id or "", hits=hits, total=total,
                           offset=offset, asset_hits=asset_hits, asset_total=asset_total,
                           asset_offset=asset_offset, limit=RESULTS_PER_PAGE,
                           crumbs=[*breadcrumbs(), ("Search keys", None)])
