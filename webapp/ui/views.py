"""The pages, from DAGs down to one task instance's keys. Views parse the query string,
call ``runs`` / ``store`` and render; the queries live in those modules."""

from __future__ import annotations

from flask import make_response, render_template, request

from .. import runs
from . import bp
from .helpers import TI, breadcrumbs, int_arg, is_htmx, key_table_context, task_instance_of, task_instance_page

DAGS_PER_PAGE = 100
RUNS_PER_PAGE = 50
TASK_INSTANCES_PER_PAGE = 200
POLL_STOP = 286  # htmx stops polling on this status: the task instance is no longer running


@bp.get("/")
def dags():
    offset = int_arg("offset", 0, 0)
    page = runs.dag_summaries(DAGS_PER_PAGE, offset)
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


@bp.get(TI)
def task_instance(dag_id: str, run_id: str, task_id: str):
    ti = task_instance_of(dag_id, run_id, task_id)
    # htmx asks for the rows alone (the polling table body); a history restore wants the page.
    if is_htmx() and "HX-History-Restore-Request" not in request.headers:
        response = make_response(render_template("_keys_rows.html", **key_table_context(ti)))
        if ti.state != "running":
            response.status_code = POLL_STOP
        return response
    return task_instance_page(ti)
