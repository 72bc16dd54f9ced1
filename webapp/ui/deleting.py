"""Deleting a key and clearing all of a task instance's or an asset's keys, each after a
confirmation whose button repeats the action ("Delete", "Clear"). Like ``editing``: one view
for every owner, a plain form without JavaScript, the table row with htmx; the store records
every change in the history."""

from __future__ import annotations

from flask import render_template, request

from .. import store
from ..errors import PreconditionFailed
from ..transactions import committed
from .forms import ClearForm, VersionedForm
from .helpers import actor, is_htmx, key_arg
from .keys import back_to, row_form_response
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
        committed(lambda: store.delete_entry(scope, key, actor=actor(), if_match=form.version.data))
    except PreconditionFailed as exc:
        if exc.current is None:  # deleted meanwhile: what the user wanted anyway
            return "" if is_htmx() else back_to(owner, f"Key {key!r} was already gone.")
        form.version.data = exc.current.etag
        return row_form_response("delete", owner, key, form, exc.current, 409, conflict=exc)
    if is_htmx():
        return ""  # the row is swapped for nothing: it goes
    return back_to(owner, f"Deleted key {key!r}.")


# --- clear ----------------------------------------------------------------------------------


@owner_route("/clear", ["GET"])
def confirm_clear(owner: Owner):
    """The warning page. A mapped task instance's page also offers every map index of its
    task (``?all_map_indices=1``)."""
    every = owner.clear_every(request.args.get("all_map_indices") == "1")
    form = ClearForm(formdata=None, all_map_indices="1" if every else "")
    return render_template("clear_confirm.html", owner=owner, form=form, every=every,
                           crumbs=[*owner.crumbs, ("Clear", None)])


@owner_route("/clear", ["POST"])
def clear_keys(owner: Owner):
    form = ClearForm()
    if not form.validate_on_submit():
        return back_to(owner, "Nothing was cleared: the form was incomplete.", "error")
    every = owner.clear_every(form.all_map_indices.data == "1")
    deleted = committed(lambda: store.clear_entries(owner.clear_scope(every), actor=actor()))
    return back_to(owner, owner.cleared(deleted, every))
