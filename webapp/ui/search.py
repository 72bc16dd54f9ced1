"""Key search: keys whose name contains a text, across all task instances or one DAG."""

from __future__ import annotations

from flask import render_template, request

from .. import store
from . import bp
from .helpers import breadcrumbs, int_arg

RESULTS_PER_PAGE = 50


@bp.get("/search")
def search():
    text = request.args.get("q", "")
    dag_id = request.args.get("dag_id", "").strip() or None
    offset = int_arg("offset", 0, 0)
    hits, total = [], 0
    if text:
        hits, total = store.search_keys(text, within={"dag_id": dag_id} if dag_id else None,
                                        limit=RESULTS_PER_PAGE, offset=offset)
    return render_template("search.html", text=text, dag_id=dag_id or "", hits=hits, total=total,
                           offset=offset, limit=RESULTS_PER_PAGE, crumbs=[*breadcrumbs(), ("Search keys", None)])
