"""The pages from DAGs down to one run's task instances (a task instance's keys are
``keys``' page; assets are ``asset_views``'), and deleting a run. Views parse the query
string, call ``runs`` and render; the queries live there."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from .. import runs
from ..errors import NotFound
from ..models import utcnow
from ..transactions import committed
from . import bp
from .forms import ConfirmForm
from .helpers import breadcrumbs, int_arg, principal, require_role, wants_fragment

DAGS_PER_PAGE = 100
RUNS_PER_PAGE = 50
TASK_INSTANCES_PER_PAGE = 200
RUN = "/dags/<dag_id>/runs/<run_id>"


@bp.get("/")
def dags():
    """The DAG list; ``?q=`` keeps the DAGs whose id contains it. The filter box asks htmx for
    the table alone as one types."""
    text = request.args.get("q", "").strip()
    offset = int_arg("offset", 0, 0)
    page = runs.dag_summaries(DAGS_PER_PAGE, offset, visible=principal().dags, contains=text or None)
    context = dict(page=page, offset=offset, limit=DAGS_PER_PAGE, text=text, now=utcnow())
    # A history restore (Back after the address followed the filter) wants the whole page.
    if wants_fragment():
        return render_template("_dags_table.html", **context)
    return render_template("dags.html", **context, crumbs=breadcrumbs())


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


@bp.get(RUN)
def dag_run(dag_id: str, run_id: str):
    run = runs.get_dag_run(dag_id, run_id)
    offset = int_arg("offset", 0, 0)
    page = runs.task_instance_rows(run, TASK_INSTANCES_PER_PAGE, offset, in_creation_order=True)
    return render_template("dag_run.html", run=run, page=page, groups=runs.task_groups(page.items), offset=offset,
                           limit=TASK_INSTANCES_PER_PAGE, crumbs=breadcrumbs(dag_id, run_id))


# --- deleting a run (admins) ------------------------------------------------------------------


@bp.get(RUN + "/delete")
def confirm_delete_run(dag_id: str, run_id: str):
    require_role("admin")
    run = runs.get_dag_run(dag_id, run_id)
    return render_template("run_delete.html", run=run, contents=runs.run_contents(run), form=ConfirmForm(),
                           crumbs=[*breadcrumbs(dag_id, run_id), ("Delete", None)])


@bp.post(RUN + "/delete")
def delete_run(dag_id: str, run_id: str):
    require_role("admin")
    if not ConfirmForm().validate_on_submit():
        flash("Nothing was deleted: the form was incomplete.", "error")
        return redirect(url_for("ui.dag_run", dag_id=dag_id, run_id=run_id), code=303)
    try:
        gone = committed(lambda: runs.delete_dag_run_and_count(dag_id, run_id))
    except NotFound:  # deleted meanwhile (another tab, the API, ``taskstore clean``): what was wanted
        flash(f"Run {run_id} was already gone.")
    else:
        flash(f"Deleted run {run_id} with {gone.describe()}.")
    # The DAG's runs page, unless that was its last run: a DAG without runs has no page.
    if runs.dag_exists(dag_id):
        return redirect(url_for("ui.dag_runs", dag_id=dag_id), code=303)
    return redirect(url_for("ui.dags"), code=303)
