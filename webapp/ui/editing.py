"""Editing keys, a task instance's or an asset's: add, edit, extend (editors and admins;
``deleting`` has delete and clear). Each view serves every owner (``owners.owner_route``):
``/dags/.../tasks/<task_id>/edit`` and ``/assets/<asset_id>/edit`` are the same code.

Each action works as a plain form (POST, then a redirect back to the owner's page) and, when
htmx sends it (``HX-Request``), answers the table row alone so the page is not reloaded.
Refusals answer 422 (invalid input) or 409 (a worker changed the key since the form was
opened), with the form and its messages; the store's versioned edits refuse a form based on
a row a worker has rewritten since, and record every change in the history. Keys that never
expire (an asset's) have no expiry fields and no Extend."""

from __future__ import annotations

from flask import render_template

from .. import store
from ..errors import Conflict, InvalidInput, PreconditionFailed
from ..models import utcnow
from ..transactions import committed
from . import formatting
from .forms import EXTEND_BY, INVALID, KEEP, ExtendForm, add_key_form, edit_key_form
from .helpers import actor, is_htmx, key_arg
from .keys import back_to, conflict_text, in_sync, keys_page, render_row, row_form_response
from .owners import Owner, owner_route

# --- add ------------------------------------------------------------------------------------


@owner_route("", ["POST"])
def add_key(owner: Owner):
    """With htmx the new row goes to the top of the table and the form comes back empty; a
    refused form comes back in place with its errors (retargeted from the table)."""
    form = add_key_form(owner.kind)
    if form.validate_on_submit():
        expiry = form.chosen_expiry(utcnow())
        key = form.key.data
        if expiry is not INVALID:
            try:
                change = committed(lambda: store.add_entry(owner.scope, key, form.encoded_value, expiry,
                                                           actor=actor()))
                if not is_htmx():
                    return back_to(owner, f"Added key {key!r}.")
                return in_sync(owner, render_row(owner, change.after, notice="Added."),
                               add_form=add_key_form(owner.kind, formdata=None))
            except Conflict as exc:
                form.key.errors = [exc.message]
    if is_htmx():
        return render_template("_add_key.html", owner=owner, add_form=form), 422, {
            "HX-Retarget": "#add-key-section", "HX-Reswap": "outerHTML"}
    return keys_page(owner, add_form=form), 422


# --- edit -----------------------------------------------------------------------------------


@owner_route("/edit", ["GET"])
def edit_key(owner: Owner):
    key = key_arg()
    entry = store.current_entry(owner.scope, key)
    if entry is None and is_htmx():
        return ""  # deleted or expired since the page was shown: its row goes
    entry = entry or store.get_entry(owner.scope, key)  # no row to remove: say so (404)
    form = edit_key_form(owner.kind, entry, formdata=None, value=formatting.pretty_json(entry.value_json),
                         version=entry.etag, expiration=KEEP)
    return row_form_response("edit", owner, key, form, entry, 200)


@owner_route("/row", ["GET"])
def key_row(owner: Owner):
    """One row as shown in the table: what an inline form's Cancel puts back."""
    entry = store.current_entry(owner.scope, key_arg())
    if entry is None:
        return ""  # gone meanwhile: the row goes too
    return render_row(owner, entry, focus=True)


@owner_route("/edit", ["POST"])
def save_key(owner: Owner):
    scope, key = owner.scope, key_arg()
    entry = store.current_entry(scope, key)
    form = edit_key_form(owner.kind, entry)
    if not form.validate_on_submit() or (expiry := form.chosen_expiry(utcnow())) is INVALID:
        return row_form_response("edit", owner, key, form, entry, 422)

    def save():
        if expiry == KEEP:
            return store.patch_value(scope, key, form.encoded_value, actor=actor(), if_match=form.version.data)
        return store.put_entry(scope, key, form.encoded_value, expiry, actor=actor(), if_match=form.version.data)

    try:
        change = committed(save)
    except PreconditionFailed as exc:
        # The user's input stays; the form now carries the current version, so saving again
        # replaces what the worker wrote, knowingly.
        if exc.current is not None:
            form.version.data = exc.current.etag
        return row_form_response("edit", owner, key, form, exc.current, 409, conflict=exc)
    if is_htmx():
        return in_sync(owner, render_row(owner, change.after, notice="Saved.", focus=True))
    return back_to(owner, f"Saved key {key!r}.")


# --- extend ---------------------------------------------------------------------------------


@owner_route("/extend", ["POST"], expiring_only=True)
def extend_key(owner: Owner):
    scope, key = owner.scope, key_arg()
    form = ExtendForm()
    if not form.validate_on_submit():
        message = "; ".join(error for errors in form.errors.values() for error in errors)
        return _refused(owner, key, f"Not extended: {message}", status=422)
    label, delta = EXTEND_BY[form.by.data]
    try:
        change = committed(lambda: store.extend_entry(scope, key, delta, actor=actor(), if_match=form.version.data))
    except PreconditionFailed as exc:
        return _refused(owner, key, conflict_text(owner, exc), conflict=exc.current, status=409)
    except InvalidInput as exc:
        return _refused(owner, key, f"Not extended: {exc.problem}.", status=422)
    if is_htmx():
        return in_sync(owner, render_row(owner, change.after, notice=f"Extended by {label.lstrip('+')}."))
    return back_to(owner, f"Extended key {key!r} by {label.lstrip('+')}.")


def _refused(owner: Owner, key, message: str, *, status: int, conflict=None):
    """A refused row action: htmx gets the row (current data) with the message in it."""
    if is_htmx():
        entry = store.current_entry(owner.scope, key)
        return (render_row(owner, entry, notice=message, conflict=conflict), status) if entry else ""
    if conflict is not None:
        message += " " + conflict.value_json
    return back_to(owner, message, "error")
