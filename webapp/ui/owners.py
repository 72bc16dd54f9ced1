"""The pages that hold keys: a task instance's and an asset's. Both show the same key table,
forms, confirmations and history, from the same views (``keys``, ``editing``, ``deleting``)
and templates; an *owner* tells them what differs:

- ``scope``: the store's scope of the keys (``owner.kind``, its kind, says whether they
  expire: templates show expiry columns and fields by ``owner.kind.expires``, never by the
  owner's type); ``shows_writer``: whether the table says who last wrote each key;
  ``shows_try``: whether it says which try of the task instance last wrote each key;
- ``url(action, **args)``: the URL of one of its routes (``"page"``, ``"edit_key"``, ...),
  with what names the owner in the query string (a mapped task instance's ``map_index``);
- ``name``, ``context``, ``crumbs``: how its pages are titled;
- what its page adds (``template``, ``page_context``), whether the key table polls, and the
  words of its empty table and of its "Clear all keys" confirmation.

``owner_route`` registers one view for every kind of owner: the task instance's routes keep
their URLs and endpoint names (``ui.edit_key``), an asset's are ``/assets/<asset_id>/...``
(``ui.asset_edit_key``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from markupsafe import Markup

from .. import assets, lifecycle, runs, store
from . import bp
from .forms import MoveSetAsideForm
from .helpers import TI, breadcrumbs, breadcrumbs_of, int_arg, principal, require_role

ASSET = "/assets/<rowid:asset_id>"  # an asset's pages; by id: names may hold "/", "?" or "#"
ASSET_WRITES_SHOWN = 20


def ti_label(task_id: str, map_index: int) -> str:
    return task_id if map_index == -1 else f"{task_id} [{map_index}]"


@dataclass(frozen=True)
class OwnerRoutes:
    """One kind of owner's routes: the URL rule its routes start with, how an action (a view's
    name) becomes its endpoint, and how a request's path finds the owner (404 naming it)."""

    rule: str
    page_endpoint: str
    endpoint_prefix: str
    scope_kind: store.ScopeKind
    resolve: Callable[..., Owner] = field(repr=False)

    def endpoint(self, action: str) -> str:
        return self.page_endpoint if action == "page" else self.endpoint_prefix + action


class Owner:
    """Whose keys a page shows (``TaskInstanceOwner``, ``AssetOwner``), resolved from the
    request by ``routes.resolve``; the shared views and templates ask it what differs."""

    routes: OwnerRoutes
    template: str  # the page, extending keys_page.html
    scope: store.Scope
    name: str  # short: window titles
    context: str  # a heading's small print: whose keys these are

    @property
    def kind(self) -> store.ScopeKind:
        return self.scope.kind

    # Whether the key table has a "Last written by" column: an asset's keys are written by any
    # task, watcher or person (``entry.written_by`` says which); a task instance's by itself.
    shows_writer = False
    # Whether each key's Updated cell says which try last wrote it ("by try 2", or a person or
    # tool): a task instance's keys record it; an asset's keys belong to no task instance's tries.
    shows_try = False

    @property
    def columns(self) -> int:
        """The key table's columns, Actions aside."""
        return 3 + self.kind.expires + self.shows_writer

    def path_args(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def query(self) -> dict[str, Any]:
        """What names the owner in a query string (and in a GET form's hidden fields)."""
        return {}

    def url(self, action: str = "page", **args) -> str:
        return url_for("ui." + self.routes.endpoint(action), **self.path_args(), **args, **self.query)

    @property
    def crumbs(self) -> list[tuple[str, str | None]]:
        raise NotImplementedError

    export_name = "keys"  # an export's file name, before ".keys.json"

    polls = True  # does the key table refresh itself?
    live_note = "Refreshes every 3 seconds."

    def page_context(self) -> dict[str, Any]:
        return {}

    def empty_text(self, show_expired: bool) -> str:
        raise NotImplementedError

    def clear_every(self, asked: bool) -> bool:
        """Whether a clear goes wider than this owner (every map index of a task)."""
        return False

    def clear_scope(self, every: bool) -> store.Scope:
        return self.scope

    def clear_context(self, every: bool) -> str:
        return self.context

    def clear_description(self, every: bool) -> Markup:
        raise NotImplementedError

    clear_warning = Markup("")

    def cleared(self, deleted: int, every: bool) -> str:
        raise NotImplementedError


def keys_text(deleted: int) -> str:
    return f"{deleted} key{'' if deleted == 1 else 's'}"


class TaskInstanceOwner(Owner):
    template = "task_instance.html"
    shows_try = True
    live_note = "Refreshes every 3 seconds while the task runs."
    clear_warning = Markup("<strong>A task that uses these keys to resume (an external job id, a checkpoint) will "
                           "start over</strong> on its next try.")

    def __init__(self, ti):
        self.ti = ti
        self.scope = store.scope_of(ti)
        self.name = ti.task_id
        self.context = f"{ti_label(ti.task_id, ti.map_index)} · {ti.run_id}"
        self.export_name = "_".join([ti.dag_id, ti.run_id, ti.task_id, *([str(ti.map_index)] * (ti.map_index != -1))])

    def path_args(self) -> dict[str, Any]:
        return {"dag_id": self.ti.dag_id, "run_id": self.ti.run_id, "task_id": self.ti.task_id}

    @property
    def query(self) -> dict[str, Any]:
        return {} if self.ti.map_index == -1 else {"map_index": self.ti.map_index}

    @property
    def crumbs(self):
        return breadcrumbs_of(self.ti)

    @property
    def polls(self) -> bool:  # the server answers 286 (stop) once it is not running
        return self.ti.state == "running"

    def page_context(self) -> dict[str, Any]:
        ti = self.ti
        writes = store.asset_keys_written_by(ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
                                             visible=principal().assets)
        previous_index, next_index = runs.neighbour_map_indexes(ti)
        return {"ti": ti, "previous_index": previous_index, "next_index": next_index,
                "asset_writes": writes[:ASSET_WRITES_SHOWN], "asset_writes_total": len(writes),
                "tries": lifecycle.tries(ti), "set_aside": store.list_set_aside(self.scope),
                "move_form": MoveSetAsideForm(formdata=None)}

    def map_index_scope(self, map_index: int) -> store.TaskInstanceScope:
        """The keys of another map index of this task in this run (NotFound when it has none)."""
        ti = self.ti
        return store.scope_of(runs.get_task_instance(ti.dag_id, ti.run_id, ti.task_id, map_index))

    def empty_text(self, show_expired: bool) -> str:
        return "This task instance has no keys." if show_expired else "No live keys."

    def clear_every(self, asked: bool) -> bool:
        return asked

    def clear_scope(self, every: bool) -> store.Scope:
        return self.scope.every_map_index() if every else self.scope

    def clear_context(self, every: bool) -> str:
        return f"{ti_label(self.ti.task_id, -1 if every else self.ti.map_index)} · {self.ti.run_id}"

    def clear_description(self, every: bool) -> Markup:
        ti = self.ti
        index = f" (map index {ti.map_index})" if ti.map_index != -1 and not every else ""
        return Markup("This deletes every key of {} <code>{}</code>{} in run <code>{}</code> of DAG <code>{}</code>, "
                      "expired ones included.").format(
            "every map index of task" if every else "task instance", ti.task_id, index, ti.run_id, ti.dag_id)

    def cleared(self, deleted: int, every: bool) -> str:
        where = "every map index of this task" if every else "this task instance"
        return f"Cleared {keys_text(deleted)} of {where}."


class AssetOwner(Owner):
    template = "asset.html"
    shows_writer = True
    clear_warning = Markup("<strong>A task that uses these keys as watermarks (the last partition, file or offset it "
                           "processed) will start over</strong>: its next run processes everything again.")

    def __init__(self, asset):
        self.asset = asset
        self.scope = store.scope_of_asset(asset, reader_dags=principal().dags)
        self.name = self.context = asset.name
        self.export_name = f"asset_{asset.name}"

    def path_args(self) -> dict[str, Any]:
        return {"asset_id": self.asset.id}

    @property
    def crumbs(self):
        return [*breadcrumbs(), ("Assets", url_for("ui.assets")), (self.asset.name, self.url())]

    def page_context(self) -> dict[str, Any]:
        return {"asset": self.asset}

    def empty_text(self, show_expired: bool) -> str:
        return "This asset has no keys."

    def clear_description(self, every: bool) -> Markup:
        return Markup("This deletes every key of asset <code>{}</code> (<code>{}</code>), which every task and "
                      "watcher using the asset shares.").format(self.asset.name, self.asset.uri)

    def cleared(self, deleted: int, every: bool) -> str:
        return f"Cleared {keys_text(deleted)} of this asset."


def _task_instance(dag_id: str, run_id: str, task_id: str) -> TaskInstanceOwner:
    """The task instance of the path and ``?map_index=`` (default -1)."""
    return TaskInstanceOwner(runs.get_task_instance(dag_id, run_id, task_id, int_arg("map_index", -1, -1)))


def _asset(asset_id: int) -> AssetOwner:
    return AssetOwner(assets.get(asset_id))


TaskInstanceOwner.routes = OwnerRoutes(TI, "task_instance", "", store.TASK_KEYS, _task_instance)
AssetOwner.routes = OwnerRoutes(ASSET, "asset", "asset_", store.ASSET_KEYS, _asset)
OWNERS = (TaskInstanceOwner.routes, AssetOwner.routes)


def owner_route(suffix: str, methods: list[str], *, editor: bool = True, expiring_only: bool = False,
                fenced_only: bool = False):
    """Register ``view(owner)`` under every owner's rule + ``suffix``, named after the view
    (``ui.edit_key``, ``ui.asset_edit_key``; a view named ``page`` is the owner's page).
    ``editor``: viewers get 403 before anything is looked up. ``expiring_only``: only owners
    whose keys expire have the route. ``fenced_only``: only owners whose keys can be set aside
    (their kind has a fence: a task key's map key)."""

    def register(view):
        for routes in OWNERS:
            if (expiring_only and not routes.scope_kind.expires) or (fenced_only and not routes.scope_kind.fence):
                continue

            def endpoint_view(_routes=routes, **path_args):
                if editor:
                    require_role("editor")
                return view(_routes.resolve(**path_args))

            bp.add_url_rule(routes.rule + suffix, routes.endpoint(view.__name__), endpoint_view, methods=methods)
        return view

    return register
