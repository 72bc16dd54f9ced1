"""Deleting a key and clearing all of a task instance's or an asset's keys, each after a
confirmation whose button repeats the action ("Delete", "Clear"). Like ``editing``: one view
for every owner, a plain form without JavaScript, the table row with htmx; the store records
every change in the history."""

from __future__ import annotations

from flask import render_template, request

from .. import store
from ..errors import Conflict, PreconditionFailed
from ..transactions import committed
from .forms import ClearForm, UndoDeleteForm, VersionedForm
from .helpers import actor, is_htmx, key_arg
from .keys import back_to, in_sync, key_table_context, render_row, row_form_response
from .owners import Owner, owner_route

# --- delete ---------------------------------------------------------------------------------


@owner_route("/delete", ["GET"])
def confirm_delete(owner: Owner):
    key = key_arg()
    entry = store.get_entry(owner.scope, key)
    return row_form_response("delete", owner, key, VersionedForm(formdata=None, version=entry.etag), entry, 200)


@owner_route("/delete", ["POST"])
def delete_key(owner: Owner):
    scope, key = owner.scope, key_arg()
    form = VersionedForm()
    if not form.validate_on_submit():
        return row_form_response("delete", owner, key, form, store.current_entry(scope, key), 422)
    try:
        change = committed(lambda: store.delete_entry(scope, key, actor=actor(), if_match=form.version.data))
    except PreconditionFailed as exc:
        if exc.current is None:  # deleted meanwhile: what the user wanted anyway
            return in_sync(owner, "") if is_htmx() else back_to(owner, f"Key {key!r} was already gone.")
        form.version.data = exc.current.etag
        return row_form_response("delete", owner, key, form, exc.current, 409, conflict=exc)
    if is_htmx():  # the row becomes a notice offering Undo
        return in_sync(owner, render_template("_key_deleted_row.html", owner=owner, key=key,
                                              change_id=change.history_id))
    return back_to(owner, f"Deleted key {key!r}.", undo=change.history_id)


@owner_route("/undo", ["POST"])
def undo_delete(owner: Owner):
    """Put a deleted key back (its value and expiry), unless anything wrote it since."""
    key, form = key_arg(), UndoDeleteForm()
    if not form.validate_on_submit():
        return _undo_refused(owner, key, "Nothing was restored: the form was incomplete.", 422)
    try:
        change = committed(lambda: store.undo_delete(owner.scope, form.change.data, actor=actor()))
    except Conflict as exc:
        return _undo_refused(owner, key, exc.message, 409)
    if is_htmx():
        return in_sync(owner, render_row(owner, change.after, notice="Restored.", focus=True))
    return back_to(owner, f"Restored key {key!r}.")


def _undo_refused(owner: Owner, key: str, message: str, status: int):
    if not is_htmx():
        return back_to(owner, message, "error")
    entry = store.current_entry(owner.scope, key)  # a worker's new value, if that is why
    html = render_row(owner, entry, notice=message) if entry else render_template(
        "_key_message_row.html", owner=owner, message=message)
    return in_sync(owner, html), status


# --- clear ----------------------------------------------------------------------------------


@owner_route("/clear", ["GET"])
def confirm_clear(owner: Owner):
    """The warning page. A mapped task instance's page also offers every map index of its
    task (``?all_map_indices=1``)."""
    every = owner.clear_every(request.args.get("all_map_indices") == "1")
    form = ClearForm(formdata=None, all_map_indices="1" if every else "")
    if is_htmx():
        return render_template("_clear_confirm_form.html", owner=owner, form=form, every=every, inline=True)
    return render_template("clear_confirm.html", owner=owner, form=form, every=every,
                           crumbs=[*owner.crumbs, ("Clear", None)])


@owner_route("/clear", ["POST"])
def clear_keys(owner: Owner):
    form = ClearForm()
    if not form.validate_on_submit():
        return back_to(owner, "Nothing was cleared: the form was incomplete.", "error")
    every = owner.clear_every(form.all_map_indices.data == "1")
    deleted = committed(lambda: store.clear_entries(owner.clear_scope(every), actor=actor()))
    if is_htmx():  # the outcome in the clear slot; the emptied rows, count and history out of band
        return in_sync(owner, render_template("_cleared.html", message=owner.cleared(deleted, every),
                                              **key_table_context(owner)))
    return back_to(owner, owner.cleared(deleted, every))
