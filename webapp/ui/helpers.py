"""What the UI's routes share: the key a route names, who is acting and what they may do,
whether htmx asked, and the URLs and breadcrumbs the templates build. (How a key page, row or
form is answered is ``keys``'; whose keys a route is about, ``owners``'.) Route modules hold
routes only."""

from __future__ import annotations

from functools import partial

from flask import g, request, url_for

from .. import http, store
from ..auth import roles, users
from . import formatting
from .forms import EXTEND_BY

TI = "/dags/<dag_id>/runs/<run_id>/tasks/<task_id>"  # a task instance's pages; ?map_index=N

# Page and map-index parameters come from links and GET forms, which send empty fields.
int_arg = partial(http.int_arg, empty_is_default=True)


def is_htmx() -> bool:
    """Whether htmx asked (for a fragment). The answer then depends on the header, which the
    blueprint's after_request announces in ``Vary``."""
    g.varies_on_htmx = True
    return http.is_htmx()


def wants_fragment() -> bool:
    """Whether htmx asked for a page's part (its results, its rows). Restoring its history
    after a reload, htmx asks for the whole page."""
    return is_htmx() and "HX-History-Restore-Request" not in request.headers


def principal() -> roles.Principal:
    """The logged-in person: role, and the DAGs and assets they may see; worked out once per
    request (templates ask for it in every has_role), again only if the person changes."""
    if g.get("principal_of") is not g.user:
        g.principal, g.principal_of = users.principal(g.user), g.user
    return g.principal


def has_role(role: str) -> bool:
    """Whether the logged-in person may do this: templates show edit controls to editors only."""
    return g.user is not None and principal().has(role)


def manages_access() -> bool:
    """Whether the Access page is theirs: an admin who sees every DAG and asset."""
    return g.user is not None and principal().has("admin") and principal().unrestricted


def require_role(role: str) -> None:
    """For the editing views: viewers may read, editors change keys, admins do everything."""
    principal().require(role)


def actor() -> str:
    """Who the history names for this request's changes."""
    return principal().name


def key_arg() -> str:
    # Keys travel in the query string: they may hold "/", "?" or "#", which a path would mangle.
    return store.validate_key(request.args.get("key", ""))


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


def register(bp) -> None:
    """Template globals and the Vary header, on the UI blueprint."""
    formatting.register(bp)
    for function in (has_role, manages_access, page_url):
        bp.add_app_template_global(function)
    # The Extend buttons offer exactly the choices the server accepts.
    bp.add_app_template_global([(by, label) for by, (label, _delta) in EXTEND_BY.items()], "extend_choices")
    bp.add_app_template_global(store.describe_change, "describe_change")

    @bp.after_request
    def vary_on_htmx(response):
        # The same URL answers a page or a fragment: caches must keep them apart.
        if g.get("varies_on_htmx"):
            response.vary.add("HX-Request")
        return response
