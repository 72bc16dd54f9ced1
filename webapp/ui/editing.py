"""Editing a task instance's keys: add, edit, extend (editors and admins; ``deleting`` has
delete and clear).

Each action works as a plain form (POST, then a redirect back to the task instance page) and,
when htmx sends it (``HX-Request``), answers the table row alone so the page is not reloaded.
Refusals answer 422 (invalid input) or 409 (a worker changed the key since the form was
opened), with the form and its messages; the store's versioned edits refuse a form based on
a row a worker has rewritten since, and record every change in the history."""

from __future__ import annotations

from .. import store
from ..errors import Conflict, InvalidInput, PreconditionFailed
from ..models import utcnow
from ..transactions import committed
from . import bp, formatting
from .forms import EXTEND_BY, INVALID, KEEP, AddKeyForm, EditKeyForm, ExtendForm
from .helpers import (
    TI,
    actor,
    back_to,
    conflict_text,
    is_htmx,
    key_arg,
    render_row,
    row_form_response,
    target,
    task_instance_page,
)

# --- add ------------------------------------------------------------------------------------


@bp.post(TI)
def add_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    form = AddKeyForm()
    form.set_expiration_choices()
    if form.validate_on_submit():
        expiry = form.chosen_expiry(utcnow())
        key = form.key.data
        if expiry is not INVALID:
            try:
                committed(lambda: store.add_entry(scope, key, form.encoded_value, expiry, actor=actor()))
                return back_to(ti, f"Added key {key!r}.")
            except Conflict as exc:
                form.key.errors = [exc.message]
    return task_instance_page(ti, add_form=form), 422


# --- edit -----------------------------------------------------------------------------------


def keep_label(entry) -> str:
    if entry is None or entry.expires_at is None:
        return "Keep (never expires)" if entry else "Keep"
    return f"Keep ({formatting.expiry(entry.expires_at, utcnow())})"


@bp.get(TI + "/edit")
def edit_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    entry = store.current_entry(scope, key)
    if entry is None and is_htmx():
        return ""  # deleted or expired since the page was shown: its row goes
    entry = entry or store.get_entry(scope, key)  # no row to remove: say so (404)
    form = EditKeyForm(formdata=None, value=formatting.pretty_json(entry.value_json), version=entry.etag,
                       expiration=KEEP, expires_at=entry.expires_at)
    form.set_expiration_choices(keep_label(entry))
    return row_form_response("edit", ti, key, form, entry, 200)


@bp.get(TI + "/row")
def key_row(dag_id: str, run_id: str, task_id: str):
    """One row as shown in the table: what an inline form's Cancel puts back."""
    ti, scope = target(dag_id, run_id, task_id)
    entry = store.current_entry(scope, key_arg())
    if entry is None:
        return ""  # gone meanwhile: the row goes too
    return render_row(ti, entry, focus=True)


@bp.post(TI + "/edit")
def save_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = EditKeyForm()
    entry = store.current_entry(scope, key)
    form.set_expiration_choices(keep_label(entry))
    if not form.validate_on_submit() or (expiry := form.chosen_expiry(utcnow())) is INVALID:
        return row_form_response("edit", ti, key, form, entry, 422)

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
        return row_form_response("edit", ti, key, form, exc.current, 409, conflict=exc)
    if is_htmx():
        return render_row(ti, change.after, notice="Saved.", focus=True)
    return back_to(ti, f"Saved key {key!r}.")


# --- extend ---------------------------------------------------------------------------------


@bp.post(TI + "/extend")
def extend_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = ExtendForm()
    if not form.validate_on_submit():
        message = "; ".join(error for errors in form.errors.values() for error in errors)
        return _refused(ti, key, scope, f"Not extended: {message}", status=422)
    label, delta = EXTEND_BY[form.by.data]
    try:
        change = committed(lambda: store.extend_entry(scope, key, delta, actor=actor(), if_match=form.version.data))
    except PreconditionFailed as exc:
        return _refused(ti, key, scope, conflict_text(exc), conflict=exc.current, status=409)
    except InvalidInput as exc:
        return _refused(ti, key, scope, f"Not extended: {exc.problem}.", status=422)
    if is_htmx():
        return render_row(ti, change.after, notice=f"Extended by {label.lstrip('+')}.")
    return back_to(ti, f"Extended key {key!r} by {label.lstrip('+')}.")


def _refused(ti, key, scope, message: str, *, status: int, conflict=None):
    """A refused row action: htmx gets the row (current data) with the message in it."""
    if is_htmx():
        entry = store.current_entry(scope, key)
        return (render_row(ti, entry, notice=message, conflict=conflict), status) if entry else ""
    if conflict is not None:
        message += " " + conflict.value_json
    return back_to(ti, message, "error")
