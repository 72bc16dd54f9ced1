"""Editing a task instance's keys: add, edit, extend (editors and admins; ``deleting``
has delete and clear).

Each action works as a plain form (POST, then a redirect back to the task instance page) and,
when htmx sends it (``HX-Request``), answers the table row alone so the page is not reloaded.
Validation errors and stale versions answer 200 to htmx, because htmx does not swap 4xx
responses, and 422/409 to a full-page form. The store's versioned edits refuse a form based
on a row a worker has rewritten since; every change is recorded in the history in the same
transaction."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request

from .. import history, runs, store
from ..auth import users
from ..errors import Conflict, PreconditionFailed
from ..models import utcnow
from ..transactions import committed
from . import bp, formatting, require_role
from .forms import EXTEND_BY, INVALID, KEEP, AddKeyForm, EditKeyForm, ExtendForm
from .views import breadcrumbs, int_arg, is_htmx, task_instance_page, ti_url

TI = "/dags/<dag_id>/runs/<run_id>/tasks/<task_id>"


def target(dag_id: str, run_id: str, task_id: str):
    """The editor check, then the task instance (map_index from the query) and its scope."""
    require_role("editor")
    ti = runs.get_task_instance(dag_id, run_id, task_id, int_arg("map_index", -1, -1))
    return ti, store.scope_of(ti)


def key_arg() -> str:
    # Keys travel in the query string: they may hold "/", "?" or "#", which a path would mangle.
    return store.validate_key(request.args.get("key", ""))


def actor() -> str:
    return users.principal(g.user).name


def back_to(ti, message: str, category: str = "success"):
    flash(message, category)
    return redirect(ti_url("ui.task_instance", ti), code=303)


def render_row(ti, entry, notice: str | None = None, conflict=None):
    return render_template("_key_row.html", ti=ti, entry=entry, now=utcnow(), notice=notice, conflict=conflict)


def conflict_text(exc: PreconditionFailed) -> str:
    if exc.current is None:
        return "This key was deleted or has expired since you opened the form; nothing was changed."
    return "A worker changed this key since you opened the form; nothing was changed. Its current value:"


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
            def add():
                change = store.add_entry(scope, key, form.encoded_value, expiry)
                history.record(actor(), "set", scope, key, change)

            try:
                committed(add)
                return back_to(ti, f"Added key {key!r}.")
            except Conflict as exc:
                form.key.errors = [exc.message]
    return task_instance_page(ti, add_form=form), 422


# --- edit -----------------------------------------------------------------------------------


def keep_label(entry) -> str:
    if entry is None or entry.expires_at is None:
        return "Keep (never expires)" if entry else "Keep"
    return f"Keep ({formatting.expiry(entry.expires_at, utcnow())})"


def row_form_response(action: str, ti, key, form, entry, status: int, conflict: PreconditionFailed | None = None):
    """A key's edit or delete form: the table row for htmx, else a page of its own
    (``_key_{action}_row.html`` or ``key_{action}.html``)."""
    context = dict(ti=ti, key=key, form=form, entry=entry, now=utcnow(),
                   conflict=conflict and conflict_text(conflict), current=conflict and conflict.current)
    if is_htmx():
        return render_template(f"_key_{action}_row.html", **context)
    return render_template(f"key_{action}.html", **context,
                           crumbs=[*breadcrumbs_of(ti), (f"{action.capitalize()} {key}", None)]), status


def edit_response(ti, key, form, entry, status: int, conflict: PreconditionFailed | None = None):
    return row_form_response("edit", ti, key, form, entry, status, conflict)


def breadcrumbs_of(ti):
    return breadcrumbs(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)


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
    return edit_response(ti, key, form, entry, 200)


@bp.get(TI + "/row")
def key_row(dag_id: str, run_id: str, task_id: str):
    """One row as shown in the table: what an inline form's Cancel puts back."""
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    entry = store.current_entry(scope, key)
    if entry is None:
        return ""  # gone meanwhile: the row goes too
    return render_row(ti, entry)


@bp.post(TI + "/edit")
def save_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = EditKeyForm()
    entry = store.current_entry(scope, key)
    form.set_expiration_choices(keep_label(entry))
    if not form.validate_on_submit() or (expiry := form.chosen_expiry(utcnow())) is INVALID:
        return edit_response(ti, key, form, entry, 422)

    def save():
        if expiry == KEEP:
            change = store.patch_value(scope, key, form.encoded_value, if_match=form.version.data)
        else:
            change = store.put_entry(scope, key, form.encoded_value, expiry, if_match=form.version.data)
        history.record(actor(), "set", scope, key, change)
        return change

    try:
        change = committed(save)
    except PreconditionFailed as exc:
        # The user's input stays; the form now carries the current version, so saving again
        # replaces what the worker wrote, knowingly.
        if exc.current is not None:
            form.version.data = exc.current.etag
        return edit_response(ti, key, form, exc.current, 409, conflict=exc)
    if is_htmx():
        return render_row(ti, change.after, notice="Saved.")
    return back_to(ti, f"Saved key {key!r}.")


# --- extend ---------------------------------------------------------------------------------


@bp.post(TI + "/extend")
def extend_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = ExtendForm()
    if not form.validate_on_submit():
        message = "; ".join(error for errors in form.errors.values() for error in errors)
        return _refused(ti, key, scope, f"Not extended: {message}")
    now = utcnow()
    label, delta = EXTEND_BY[form.by.data]

    def extend():
        change = store.extend_entry(scope, key, delta, if_match=form.version.data, now=now)
        history.record(actor(), "extend", scope, key, change)
        return change

    try:
        change = committed(extend)
    except PreconditionFailed as exc:
        return _refused(ti, key, scope, conflict_text(exc), conflict=exc.current)
    if is_htmx():
        return render_row(ti, change.after, notice=f"Extended by {label.lstrip('+')}.")
    return back_to(ti, f"Extended key {key!r} by {label.lstrip('+')}.")


def _refused(ti, key, scope, message: str, conflict=None):
    """A refused row action: htmx gets the row (current data) with the message in it."""
    if is_htmx():
        entry = store.current_entry(scope, key)
        return render_row(ti, entry, notice=message, conflict=conflict) if entry else ""
    if conflict is not None:
        message += " " + conflict.value_json
    return back_to(ti, message, "error")

