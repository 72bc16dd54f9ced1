"""Keys set aside at a task instance's map index: written there under another input (map
key), kept, never handed to the worker, listed on the task instance's page under "Set aside
(from a different input)". Editors delete one (after a confirmation) or move it to a map
index of the task (this one's own: adopt it); the store refuses a move into a task instance
that has the key, and records both in the history.

Like ``editing`` and ``deleting``: a plain form without JavaScript (POST, then a redirect
back to the page), the table row with htmx (``HX-Request``). A refused move answers the
form with its message beside the field (409: the target has the key; 422: no such map
index, or not a number), as the row to htmx and as a page of its own otherwise. Only task
instances have these routes (``fenced_only``): an asset's keys are never set aside."""

from __future__ import annotations

from flask import render_template, url_for

from .. import store
from ..errors import Conflict, KeyNotFound, NotFound
from ..models import utcnow
from ..transactions import committed
from .forms import ConfirmForm, MoveSetAsideForm
from .helpers import actor, is_htmx, key_arg
from .keys import back_to
from .owners import TaskInstanceOwner, owner_route


def _set_aside(owner: TaskInstanceOwner, key: str):
    """The key set aside at this map index, with its map key; None when it is not (any more)."""
    return next(((entry, map_key) for entry, map_key in store.list_set_aside(owner.scope) if entry.key == key), None)


def render_set_aside_row(owner: TaskInstanceOwner, entry, map_key, form=None, focus: bool = False) -> str:
    """One row of the set-aside table; ``form``: the move form (a refused one, with its errors)."""
    return render_template("_set_aside_row.html", owner=owner, entry=entry, map_key=map_key, now=utcnow(),
                           move_form=form or MoveSetAsideForm(formdata=None), focus=focus)


@owner_route("/set-aside/row", ["GET"], fenced_only=True)
def set_aside_row(owner: TaskInstanceOwner):
    """One row as shown in the table: what the inline confirmation's Cancel puts back."""
    found = _set_aside(owner, key_arg())
    return "" if found is None else render_set_aside_row(owner, *found, focus=True)


# --- delete ---------------------------------------------------------------------------------


@owner_route("/set-aside/delete", ["GET"], fenced_only=True)
def confirm_delete_set_aside(owner: TaskInstanceOwner):
    key = key_arg()
    found = _set_aside(owner, key)
    if found is None:
        if is_htmx():
            return ""  # deleted or moved since the page was shown: its row goes
        raise KeyNotFound(key)
    entry, map_key = found
    context = dict(owner=owner, key=key, entry=entry, map_key=map_key, form=ConfirmForm(formdata=None))
    if is_htmx():
        return render_template("_set_aside_delete_row.html", **context)
    return render_template("set_aside_delete.html", **context, crumbs=[*owner.crumbs, (f"Delete {key}", None)])


@owner_route("/set-aside/delete", ["POST"], fenced_only=True)
def delete_set_aside(owner: TaskInstanceOwner):
    key = key_arg()
    if not ConfirmForm().validate_on_submit():
        return back_to(owner, "Nothing was deleted: the form was incomplete.", "error")
    try:
        committed(lambda: store.delete_set_aside(owner.scope, key, actor=actor()))
    except KeyNotFound:  # deleted or moved meanwhile: it is not set aside here any more
        return "" if is_htmx() else back_to(owner, f"Key {key!r} was no longer set aside.")
    if is_htmx():
        return ""  # the row is swapped for nothing: it goes
    return back_to(owner, f"Deleted set-aside key {key!r}.")


# --- move -----------------------------------------------------------------------------------


@owner_route("/set-aside/move", ["POST"], fenced_only=True)
def move_set_aside(owner: TaskInstanceOwner):
    key = key_arg()
    form = MoveSetAsideForm()
    if not form.validate_on_submit():
        return _move_refused(owner, key, form, 422)
    to_map_index = form.to_map_index.data
    try:
        target = owner.map_index_scope(to_map_index)
    except NotFound:
        form.to_map_index.errors = [f"Task {owner.ti.task_id!r} has no map index {to_map_index} in this run; "
                                    "nothing was moved."]
        return _move_refused(owner, key, form, 422)
    try:
        committed(lambda: store.move_set_aside(owner.scope, key, target, actor=actor()))
    except KeyNotFound:
        if is_htmx():
            return render_template("_set_aside_done_row.html", owner=owner,
                                   message=f"Key {key!r} was no longer set aside; nothing was moved.")
        return back_to(owner, f"Key {key!r} was no longer set aside; nothing was moved.", "error")
    except Conflict as exc:
        form.to_map_index.errors = [f"{exc.message}; nothing was moved."]
        return _move_refused(owner, key, form, 409)
    own = to_map_index == owner.ti.map_index
    message = f"Moved key {key!r} to {'this task instance' if own else f'map index {to_map_index}'}."
    if is_htmx():
        target_url = url_for("ui.task_instance", **owner.path_args(), map_index=to_map_index)
        return render_template("_set_aside_done_row.html", owner=owner, message=message, own=own,
                               to_map_index=to_map_index, target_url=target_url)
    return back_to(owner, message)


def _move_refused(owner: TaskInstanceOwner, key: str, form: MoveSetAsideForm, status: int):
    """The move form again, what was typed kept and the message beside the field: the key's row
    for htmx, a page of its own otherwise (as a refused edit)."""
    found = _set_aside(owner, key)
    if found is None:  # deleted or moved meanwhile
        return "" if is_htmx() else back_to(owner, f"Key {key!r} was no longer set aside; nothing was moved.", "error")
    if is_htmx():
        return render_set_aside_row(owner, *found, form=form), status
    entry, map_key = found
    return render_template("set_aside_move.html", owner=owner, key=key, entry=entry, map_key=map_key, form=form,
                           crumbs=[*owner.crumbs, (f"Move {key}", None)]), status
