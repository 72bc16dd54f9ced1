"""The pages from DAGs down to one run's task instances (a task instance's keys are
``keys``' page; assets are ``asset_views``'). Views parse the query string, call ``runs`` and
render; the queries live there."""

from __future__ import annotations

from flask import render_template, request

from .. import runs
from . import bp
from .helpers import breadcrumbs, int_arg, principal

DAGS_PER_PAGE = 100
RUNS_PER_PAGE = 50
TASK_INSTANCES_PER_PAGE = 200


@bp.get("/")
def dags():
    offset = int_arg("offset", 0, 0)
    page = runs.dag_summaries(DAGS_PER_PAGE, offset, visible=principal().dags)
    return render_template("dags.html", page=page, offset=offset, limit=DAGS_PER_PAGE, crumbs=breadcrumbs())


@bp.get("/dags/<dag_id>")
def dag_runs(dag_id: str):
    state = request.args.get("state") or None
    page = runs.dag_run_page(
        dag_id, limit=RUNS_PER_PAGE, state=state,
        before=int_arg("before", None, 0), after=int_arg("after", None, 0),
    )
    return render_template("dag_runs.html", dag_id=dag_id, page=page, state=state, states=runs.RUN_STATES,
                           paged=bool(request.args.get("before") or request.args.get("after")),
                           crumbs=breadcrumbs(dag_id))


@bp.get("/dags/<dag_id>/runs/<run_id>")
def dag_run(dag_id: str, run_id: str):
    run = runs.get_dag_run(dag_id, run_id)
    offset = int_arg("offset", 0, 0)
    page = runs.task_instance_rows(run, TASK_INSTANCES_PER_PAGE, offset)
    return render_template("dag_run.html", run=run, page=page, offset=offset, limit=TASK_INSTANCES_PER_PAGE,
                           crumbs=breadcrumbs(dag_id, run_id))
