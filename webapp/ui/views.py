"""The pages, from DAGs down to one task instance's keys. Views parse the query string,
call ``runs`` / ``store`` and render; the queries live in those modules."""

from __future__ import annotations

from functools import partial

from flask import g, make_response, render_template, request, url_for

from .. import history, runs, store
from ..api import http
from ..auth import users
from ..models import utcnow
from . import bp
from .forms import AddKeyForm

DAGS_PER_PAGE = 100
RUNS_PER_PAGE = 50
TASK_INSTANCES_PER_PAGE = 200
KEYS_PER_PAGE = 100
HISTORY_ROWS = 20
POLL_STOP = 286  # htmx stops polling on this status: the task instance is no longer running


@bp.app_template_global()
def has_role(role: str) -> bool:
    """Whether the logged-in person may do this: templates show edit controls to editors only."""
    return g.user is not None and users.principal(g.user).has(role)


# Page and map-index parameters come from links and GET forms, which send empty fields.
int_arg = partial(http.int_arg, empty_is_default=True)


def breadcrumbs(dag_id: str | None = None, run_id: str | None = None,
                task_id: str | None = None, map_index: int = -1) -> list[tuple[str, str]]:
    crumbs = [("DAGs", url_for("ui.dags"))]
    if dag_id is not None:
        crumbs.append((dag_id, url_for("ui.dag_runs", dag_id=dag_id)))
    if run_id is not None:
        crumbs.append((run_id, url_for("ui.dag_run", dag_id=dag_id, run_id=run_id)))
    if task_id is not None:
        label = task_id if map_index == -1 else f"{task_id} [{map_index}]"
        crumbs.append((label, url_for("ui.task_instance", dag_id=dag_id, run_id=run_id, task_id=task_id,
                                      map_index=map_index)))
    return crumbs


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


@bp.get("/dags/<dag_id>/runs/<run_id>/tasks/<task_id>")
def task_instance(dag_id: str, run_id: str, task_id: str):
    ti = runs.get_task_instance(dag_id, run_id, task_id, int_arg("map_index", -1, -1))
    # htmx asks for the rows alone (the polling table body); a history restore wants the page.
    if is_htmx() and "HX-History-Restore-Request" not in request.headers:
        response = make_response(render_template("_keys_rows.html", **key_table_context(ti)))
        if ti.state != "running":
            response.status_code = POLL_STOP
    else:
        response = make_response(task_instance_page(ti))
    # The same URL answers a page or a fragment: caches must keep them apart.
    response.vary.add("HX-Request")
    return response


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def key_table_context(ti) -> dict:
    offset = int_arg("offset", 0, 0)
    show_expired = request.args.get("show_expired") == "1"
    now = utcnow()
    entries, total = store.list_entries(
        store.scope_of(ti), limit=KEYS_PER_PAGE, offset=offset, include_expired=show_expired, now=now
    )
    return dict(ti=ti, entries=entries, total=total, now=now, offset=offset, limit=KEYS_PER_PAGE,
                show_expired=show_expired)


@bp.app_template_global()
def ti_url(endpoint: str, ti, **args) -> str:
    """A URL about one task instance (its page, or an edit route with ``key=``)."""
    if ti.map_index != -1:
        args["map_index"] = ti.map_index
    return url_for(endpoint, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, **args)


def task_instance_page(ti, add_form=None) -> str:
    """The whole page; the add-key view renders it again with a refused form's errors."""
    if add_form is None and has_role("editor"):
        add_form = AddKeyForm(formdata=None)
    if add_form is not None:
        add_form.set_expiration_choices()
    return render_template(
        "task_instance.html", **key_table_context(ti), add_form=add_form,
        self_url=request.full_path.removesuffix("?"),
        history=history.for_task_instance(store.scope_of(ti), HISTORY_ROWS),
        crumbs=breadcrumbs(ti.dag_id, ti.run_id, ti.task_id, ti.map_index),
    )


@bp.app_template_global()
def page_url(**changes) -> str:
    """This page's URL with some query arguments changed (None drops one): pagers, filters."""
    args = request.args.to_dict()
    args.update(changes)
    args = {name: value for name, value in args.items() if value is not None and name not in request.view_args}
    return url_for(request.endpoint, **request.view_args, **args)
