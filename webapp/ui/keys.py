"""A page of keys, a task instance's or an asset's (``owners``): the page itself, its key
table's rows (what htmx polls), one row, and an edit or delete form answered as a row to htmx
or as a page of its own; and the redirect back, with a message, after a plain form post."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request

from .. import store
from ..errors import PreconditionFailed
from ..models import utcnow
from . import safe_next
from .forms import add_key_form
from .helpers import has_role, int_arg, is_htmx
from .owners import Owner, owner_route

KEYS_PER_PAGE = 100
HISTORY_ROWS = 20
POLL_STOP = 286  # htmx stops polling on this status: the task instance is no longer running


@owner_route("", ["GET"], editor=False)
def page(owner: Owner):
    """``ui.task_instance`` and ``ui.asset``. htmx asks for the rows alone (the polling table
    body); a history restore wants the page."""
    if is_htmx() and "HX-History-Restore-Request" not in request.headers:
        response = make_response(render_template("_keys_rows.html", **key_table_context(owner)))
        if not owner.polls:
            response.status_code = POLL_STOP
        return response
    return keys_page(owner)


def key_table_context(owner: Owner) -> dict:
    offset = int_arg("offset", 0, 0)
    show_expired = owner.kind.expires and request.args.get("show_expired") == "1"
    now = utcnow()
    entries, total = store.list_entries(owner.scope, limit=KEYS_PER_PAGE, offset=offset,
                                        include_expired=show_expired, now=now)
    return dict(owner=owner, entries=entries, total=total, now=now, offset=offset, limit=KEYS_PER_PAGE,
                show_expired=show_expired)


def keys_page(owner: Owner, add_form=None) -> str:
    """The whole page; the add-key view renders it again with a refused form's errors."""
    if add_form is None and has_role("editor"):
        add_form = add_key_form(owner.kind, formdata=None)
    return render_template(
        owner.template, **key_table_context(owner), **owner.page_context(), add_form=add_form,
        self_url=request.full_path.removesuffix("?"),
        history=store.changes_for(owner.scope, HISTORY_ROWS),
        crumbs=owner.crumbs,
    )


def back_to(owner: Owner, message: str, category: str = "success"):
    """Redirect after a plain POST, with the outcome shown once on the owner's page."""
    flash(message, category)
    # A page listing keys of many owners (Expiring soon) sends ``next`` to get the person back to it.
    asked = request.form.get("next", "")
    return redirect(asked if asked and safe_next(asked) == asked else owner.url(), code=303)


def render_row(owner: Owner, entry, notice: str | None = None, conflict=None, focus: bool = False):
    """One key's row as in the table; ``focus`` puts the keyboard back on it (after Save or
    Cancel of an inline form)."""
    return render_template("_key_row.html", owner=owner, entry=entry, now=utcnow(), notice=notice,
                           conflict=conflict, focus=focus)


def conflict_text(owner: Owner, exc: PreconditionFailed) -> str:
    if exc.current is None:
        gone = "was deleted or has expired" if owner.kind.expires else "was deleted"
        return f"This key {gone} since you opened the form; nothing was changed."
    return "A worker changed this key since you opened the form; nothing was changed. Its current value:"


def row_form_response(action: str, owner: Owner, key, form, entry, status: int,
                      conflict: PreconditionFailed | None = None):
    """A key's edit or delete form: the table row for htmx, else a page of its own
    (``_key_{action}_row.html`` or ``key_{action}.html``). Refusals keep their status (409,
    422) either way; htmx is configured to swap them."""
    context = dict(owner=owner, key=key, form=form, entry=entry, now=utcnow(),
                   conflict=conflict and conflict_text(owner, conflict), current=conflict and conflict.current)
    if is_htmx():
        return render_template(f"_key_{action}_row.html", **context), status
    return render_template(f"key_{action}.html", **context,
                           crumbs=[*owner.crumbs, (f"{action.capitalize()} {key}", None)]), status
