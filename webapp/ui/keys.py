"""A page of keys, a task instance's or an asset's (``owners``): the page itself, its key
table's rows (what htmx polls), one row, and an edit or delete form answered as a row to htmx
or as a page of its own; and the redirect back, with a message, after a plain form post."""

from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request

from .. import store
from ..errors import PreconditionFailed
from ..models import utcnow
from . import safe_next
from .forms import ImportKeysForm, add_key_form
from .helpers import has_role, int_arg, is_htmx, wants_fragment
from .owners import Owner, owner_route

KEYS_PER_PAGE = 100
HISTORY_ROWS = 20
ROW_ID_MAX = 2**63 - 1  # history rows have 64-bit ids
POLL_STOP = 286  # htmx stops polling on this status: the task instance is no longer running


@owner_route("", ["GET"], editor=False)
def page(owner: Owner):
    """``ui.task_instance`` and ``ui.asset``. htmx asks for a part: the history (its filter
    and pager target it) or the rows (the polling table body, with the key count kept in
    step); a history restore wants the page."""
    if wants_fragment():
        if request.headers.get("HX-Target") == "history":
            return render_template("_history.html", owner=owner, now=utcnow(), **history_context(owner))
        response = make_response(render_template("_keys_rows.html", **key_table_context(owner))
                                 + render_template("_keys_sync.html", owner=owner, **count_context(owner)))
        if not owner.polls:
            response.status_code = POLL_STOP
        return response
    return keys_page(owner)


def key_table_context(owner: Owner) -> dict:
    offset = int_arg("offset", 0, 0)
    show_expired = owner.kind.expires and request.args.get("show_expired") == "1"
    sort = request.args.get("sort") or "key"
    now = utcnow()
    entries, total = store.list_entries(owner.scope, limit=KEYS_PER_PAGE, offset=offset,
                                        include_expired=show_expired, now=now, order=sort)
    return dict(owner=owner, entries=entries, total=total, now=now, offset=offset, limit=KEYS_PER_PAGE,
                show_expired=show_expired, sort=sort)


def count_context(owner: Owner) -> dict:
    live, expired = store.count_entries(owner.scope)
    return dict(live_count=live, expired_count=expired)


def history_context(owner: Owner) -> dict:
    """The history section: a page of changes through the filter its form and pager put in
    the query (``history_key``, ``history_actor``, ``history_action``, ``history_before``).
    Inline actions send the filter along (the key table includes the filter form), so the
    history they refresh keeps it."""
    args = request.values
    only = store.HistoryFilter(key=args.get("history_key", "").strip(), actor=args.get("history_actor", ""),
                               action=args.get("history_action", ""),
                               before=int_arg("history_before", None, 1, ROW_ID_MAX))
    changes, more = store.changes_for(owner.scope, HISTORY_ROWS, only)
    return dict(history=changes, history_more=more, history_filter=only, history_actors=store.actors_of(owner.scope),
                history_actions=store.HISTORY_ACTIONS)


def keys_page(owner: Owner, add_form=None, import_form=None) -> str:
    """The whole page; the add-key and import views render it again with a refused form's errors."""
    if has_role("editor"):
        add_form = add_form or add_key_form(owner.kind, formdata=None)
        import_form = import_form or ImportKeysForm(formdata=None)
    return render_template(
        owner.template, **key_table_context(owner), **owner.page_context(), add_form=add_form,
        import_form=import_form,
        **count_context(owner), **history_context(owner), undo=undo_offer(owner),
        self_url=request.full_path.removesuffix("?"),
        crumbs=owner.crumbs,
    )


def undo_offer(owner: Owner):
    """The delete a page offers to undo (``?undo=<history id>``, where a plain form's delete
    redirects), while it still can be undone."""
    change_id = int_arg("undo", None, 1, ROW_ID_MAX)
    return None if change_id is None else store.undoable_delete(owner.scope, change_id)


def in_sync(owner: Owner, html: str, **more) -> str:
    """An inline action's answer (a row) plus what it changed elsewhere on the page, swapped
    out of band from the page's own templates: the key count and the history (and ``more``:
    ``add_form``, the add form emptied after an add)."""
    return html + render_template("_keys_sync.html", owner=owner, now=utcnow(), **count_context(owner),
                                  **history_context(owner), **more)


def back_to(owner: Owner, message: str, category: str = "success", undo: int | None = None):
    """Redirect after a plain POST, with the outcome shown once on the owner's page (and,
    after a delete, the offer to undo it: ``undo``, its history row)."""
    flash(message, category)
    # A page listing keys of many owners (Expiring soon) sends ``next`` to get the person back to it.
    asked = request.form.get("next", "")
    return redirect(asked if asked and safe_next(asked) == asked else owner.url(undo=undo), code=303)


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
