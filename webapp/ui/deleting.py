"""Deleting a key and clearing a task instance's keys, each after a confirmation whose
button repeats the action ("Delete", "Clear"). Like ``editing``: a plain form without
JavaScript, the table row with htmx; the store records every change in the history."""

from __future__ import annotations

from flask import render_template, request

from .. import store
from ..errors import PreconditionFailed
from ..transactions import committed
from . import bp
from .forms import ClearForm, VersionedForm
from .helpers import TI, actor, back_to, breadcrumbs_of, is_htmx, key_arg, row_form_response, target

# --- delete ---------------------------------------------------------------------------------


@bp.get(TI + "/delete")
def confirm_delete(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    entry = store.get_entry(scope, key)
    return row_form_response("delete", ti, key, VersionedForm(formdata=None, version=entry.etag), entry, 200)


@bp.post(TI + "/delete")
def delete_key(dag_id: str, run_id: str, task_id: str):
    ti, scope = target(dag_id, run_id, task_id)
    key = key_arg()
    form = VersionedForm()
    if not form.validate_on_submit():
        return row_form_response("delete", ti, key, form, store.current_entry(scope, key), 422)
    try:
        committed(lambda: store.delete_entry(scope, key, actor=actor(), if_match=form.version.data))
    except PreconditionFailed as exc:
        if exc.current is None:  # deleted meanwhile: what the user wanted anyway
            return "" if is_htmx() else back_to(ti, f"Key {key!r} was already gone.")
        form.version.data = exc.current.etag
        return row_form_response("delete", ti, key, form, exc.current, 409, conflict=exc)
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
    deleted = committed(lambda: store.clear_entries(scope.every_map_index() if every else scope, actor=actor()))
    where = "every map index of this task" if every else "this task instance"
    return back_to(ti, f"Cleared {deleted} key{'' if deleted == 1 else 's'} of {where}.")
