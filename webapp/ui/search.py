"""Key search: keys whose name contains a text, across all task instances (or one DAG's) and
across all assets. Two tables, each paged on its own: task keys (``offset``), then asset keys
(``asset_offset``); the DAG filter narrows the task keys only. The form searches as one types
(htmx asks for the results alone and the URL follows); the DAG box suggests the DAGs there are,
and a DAG id that names none says so, with the DAGs whose id contains it. "Also search in
values" (``in_values=1``) finds keys whose value holds the text too, and each hit says where."""

from __future__ import annotations

from flask import render_template, request

from .. import runs, store
from ..errors import InvalidInput
from ..models import utcnow
from . import bp
from .helpers import breadcrumbs, int_arg, principal, wants_fragment

RESULTS_PER_PAGE = 50
DAG_SUGGESTIONS = 500  # the DAG box's list; past it, typing narrows the suggestions


@bp.get("/search")
def search():
    text = request.args.get("q", "")
    dag_id = request.args.get("dag_id", "").strip() or None
    offset = int_arg("offset", 0, 0)
    asset_offset = int_arg("asset_offset", 0, 0)
    in_values = request.args.get("in_values") == "1"
    hits, total, asset_hits, asset_total, refused = [], 0, [], 0, None
    sees = principal()
    unknown_dag = bool(dag_id) and not runs.dag_exists(dag_id, visible=sees.dags)
    similar_dags = runs.dag_ids_like(dag_id, limit=10, visible=sees.dags) if unknown_dag else []
    if text:
        try:
            hits, total = store.search_keys(text, within={"dag_id": dag_id} if dag_id else None, in_values=in_values,
                                            limit=RESULTS_PER_PAGE, offset=offset, visible=sees.dags)
            asset_hits, asset_total = store.search_keys(text, kind=store.ASSET_KEYS, in_values=in_values,
                                                        limit=RESULTS_PER_PAGE, offset=asset_offset,
                                                        visible=sees.assets)
        except InvalidInput as exc:
            refused = exc  # said in the results, which htmx swaps in as one types (an error page would not fit)
    context = dict(text=text, dag_id=dag_id or "", hits=hits, total=total, offset=offset, asset_hits=asset_hits,
                   asset_total=asset_total, asset_offset=asset_offset, limit=RESULTS_PER_PAGE, in_values=in_values,
                   unknown_dag=unknown_dag, similar_dags=similar_dags, refused=refused, now=utcnow())
    status = 422 if refused else 200
    # The form asks htmx for the results alone as one types; a history restore wants the page.
    if wants_fragment():
        return render_template("_search_results.html", **context), status
    return render_template("search.html", **context, dag_ids=runs.dag_ids_like("", limit=DAG_SUGGESTIONS,
                                                                                visible=sees.dags),
                           text_limit=store.SEARCH_TEXT_LIMIT, crumbs=[*breadcrumbs(), ("Search keys", None)]), status
