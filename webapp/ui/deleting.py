"""Deleting a key and clearing a task instance's keys, each after a confirmation whose
button repeats the action ("Delete", "Clear"). Like ``editing``: a plain form without
JavaScript, the table row with htmx; every change recorded in the history."""

from __future__ import annotations

from flask import render_template, request

from .. import history, store
from ..errors import PreconditionFailed
from ..transactions import committed
from . import bp
from .editing import TI, actor, back_to, breadcrumbs_of, key_arg, row_form_response, target
from .forms import ClearForm, VersionedForm
from .views import is_htmx


# --- delete ---------------------------------------------------------------------------------


def delete_response(ti, key, form, entry, status: int, conflict: PreconditionFailed | None = None):
    return row_form_response("delete", ti, key, form, entry, status, conflict)


@bp.get(TI + "/delete")
def confirm_delete(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    entry = store.get_entry(scope, key)
    return delete_response(ti, key, VersionedForm(formdata=None, version=entry.etag), entry, 200)


@bp.post(TI + "/delete")
def delete_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = VersionedForm()
    if not form.validate_on_submit():
        return delete_response(ti, key, form, store.current_entry(scope, key), 422)

    def remove():
        change = store.delete_entry(scope, key, if_match=form.version.data)
        history.record(actor(), "delete", scope, key, change)

    try:
        committed(remove)
    except PreconditionFailed as exc:
        if exc.current is None:  # deleted meanwhile: what the user wanted anyway
            return "" if is_htmx() else back_to(ti, f"Key {key!r} was already gone.")
        form.version.data = exc.current.etag
        return delete_response(ti, key, form, exc.current, 409, conflict=exc)
    if is_htmx():
        return ""  # the row is swapped for nothing: it goes
    return back_to(ti, f"Deleted key {key!r}.")


# --- clear ----------------------------------------------------------------------------------


@bp.get(TI + "/clear")
def confirm_clear(dag_id: str, run_id: str, task_id: str):
    ti, _scope = target(dag_id, run_id, task_id)
    every = request.args.get("all_map_indices") == "1"
    form = ClearForm(formdata=None, all_map_indices="1" if every else "")
    return render_template("clear_confirm.html", ti=ti, form=form, every=every,
                           crumbs=[*breadcrumbs_of(ti), ("Clear", None)])


@bp.post(TI + "/clear")
def clear_keys(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    form = ClearForm()
    if not form.validate_on_submit():
        return back_to(ti, "Nothing was cleared: the form was incomplete.", "error")
    every = form.all_map_indices.data == "1"
    deleted = committed(lambda: history.clear_recorded(actor(), scope, all_map_indices=every))
    where = "every map index of this task" if every else "this task instance"
    return back_to(ti, f"Cleared {deleted} key{'' if deleted == 1 else 's'} of {where}.")
