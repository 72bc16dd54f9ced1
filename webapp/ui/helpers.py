"""What the UI's routes share: the task instance a route is about, the key it names, who is
acting, how a row or a form is answered (the row to htmx, a page or a redirect otherwise),
and the URLs and breadcrumbs the templates build. Route modules hold routes only."""

from __future__ import annotations

from functools import partial

from flask import flash, g, redirect, render_template, request, url_for

from .. import http, runs, store
from ..auth import users
from ..errors import PreconditionFailed
from ..models import utcnow
from . import formatting
from .forms import EXTEND_BY, AddKeyForm

KEYS_PER_PAGE = 100
HISTORY_ROWS = 20
TI = "/dags/<dag_id>/runs/<run_id>/tasks/<task_id>"  # a task instance's pages; ?map_index=N

# Page and map-index parameters come from links and GET forms, which send empty fields.
int_arg = partial(http.int_arg, empty_is_default=True)


def is_htmx() -> bool:
    """Whether htmx asked (for a fragment). The answer then depends on the header, which the
    blueprint's after_request announces in ``Vary``."""
    g.varies_on_htmx = True
    return http.is_htmx()


def has_role(role: str) -> bool:
    """Whether the logged-in person may do this: templates show edit controls to editors only."""
    return g.user is not None and users.principal(g.user).has(role)


def require_role(role: str) -> None:
    """For the editing views: viewers may read, editors change keys, admins do everything."""
    users.principal(g.user).require(role)


def actor() -> str:
    """Who the history names for this request's changes."""
    return users.principal(g.user).name


def task_instance_of(dag_id: str, run_id: str, task_id: str):
    """The task instance a page is about (``?map_index=``, default -1): 404 naming it."""
    return runs.get_task_instance(dag_id, run_id, task_id, int_arg("map_index", -1, -1))


def target(dag_id: str, run_id: str, task_id: str):
    """The editor check, then the task instance and its scope."""
    require_role("editor")
    ti = task_instance_of(dag_id, run_id, task_id)
    return ti, store.scope_of(ti)


def key_arg() -> str:
    # Keys travel in the query string: they may hold "/", "?" or "#", which a path would mangle.
    return store.validate_key(request.args.get("key", ""))


def ti_url(endpoint: str, ti, **args) -> str:
    """A URL about one task instance (its page, or an edit route with ``key=``)."""
    if ti.map_index != -1:
        args["map_index"] = ti.map_index
    return url_for(endpoint, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, **args)


def page_url(**changes) -> str:
    """This page's URL with some query arguments changed (None drops one): pagers, filters."""
    args = request.args.to_dict()
    args.update(changes)
    args = {name: value for name, value in args.items() if value is not None and name not in request.view_args}
    return url_for(request.endpoint, **request.view_args, **args)


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


def breadcrumbs_of(ti):
    return breadcrumbs(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


def back_to(ti, message: str, category: str = "success"):
    """Redirect after a plain POST, with the outcome shown once on the task instance page."""
    flash(message, category)
    return redirect(ti_url("ui.task_instance", ti), code=303)


def key_table_context(ti) -> dict:
    offset = int_arg("offset", 0, 0)
    show_expired = request.args.get("show_expired") == "1"
    now = utcnow()
    entries, total = store.list_entries(
        store.scope_of(ti), limit=KEYS_PER_PAGE, offset=offset, include_expired=show_expired, now=now
    )
    return dict(ti=ti, entries=entries, total=total, now=now, offset=offset, limit=KEYS_PER_PAGE,
                show_expired=show_expired)


def task_instance_page(ti, add_form=None) -> str:
    """The whole page; the add-key view renders it again with a refused form's errors."""
    if add_form is None and has_role("editor"):
        add_form = AddKeyForm(formdata=None)
    if add_form is not None:
        add_form.set_expiration_choices()
    return render_template(
        "task_instance.html", **key_table_context(ti), add_form=add_form,
        self_url=request.full_path.removesuffix("?"),
        history=store.changes_for(store.scope_of(ti), HISTORY_ROWS),
        crumbs=breadcrumbs_of(ti),
    )


def render_row(ti, entry, notice: str | None = None, conflict=None, focus: bool = False):
    """One key's row as in the table; ``focus`` puts the keyboard back on it (after Save or
    Cancel of an inline form)."""
    return render_template("_key_row.html", ti=ti, entry=entry, now=utcnow(), notice=notice, conflict=conflict,
                           focus=focus)


def conflict_text(exc: PreconditionFailed) -> str:
    if exc.current is None:
        return "This key was deleted or has expired since you opened the form; nothing was changed."
    return "A worker changed this key since you opened the form; nothing was changed. Its current value:"


def row_form_response(action: str, ti, key, form, entry, status: int, conflict: PreconditionFailed | None = None):
    """A key's edit or delete form: the table row for htmx, else a page of its own
    (``_key_{action}_row.html`` or ``key_{action}.html``). Refusals keep their status (409,
    422) either way; htmx is configured to swap them."""
    context = dict(ti=ti, key=key, form=form, entry=entry, now=utcnow(),
                   conflict=conflict and conflict_text(conflict), current=conflict and conflict.current)
    if is_htmx():
        return render_template(f"_key_{action}_row.html", **context), status
    return render_template(f"key_{action}.html", **context,
                           crumbs=[*breadcrumbs_of(ti), (f"{action.capitalize()} {key}", None)]), status


def register(bp) -> None:
    """Template globals and the Vary header, on the UI blueprint."""
    formatting.register(bp)
    for function in (has_role, ti_url, page_url):
        bp.add_app_template_global(function)
    # The Extend buttons offer exactly the choices the server accepts.
    bp.add_app_template_global([(by, label) for by, (label, _delta) in EXTEND_BY.items()], "extend_choices")

    @bp.after_request
    def vary_on_htmx(response):
        # The same URL answers a page or a fragment: caches must keep them apart.
        if g.get("varies_on_htmx"):
            response.vary.add("HX-Request")
        return response
