"""Expiring soon: the task keys that expire within an hour, a day or a week, soonest first,
across every task instance the person may see; editors extend them from here. The Extend
buttons are the task instance's own route, told to come back here (``next``) with its
message. Choosing another window asks htmx for the results alone, and the URL follows."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, request

from .. import store
from ..errors import InvalidInput
from ..models import utcnow
from . import bp
from .helpers import breadcrumbs, int_arg, principal, wants_fragment

KEYS_PER_PAGE = 50
WINDOWS = {"1h": ("1 hour", timedelta(hours=1)), "1d": ("1 day", timedelta(days=1)),
           "7d": ("7 days", timedelta(days=7))}
DEFAULT_WINDOW = "1d"


@bp.get("/expiring")
def expiring():
    within = request.args.get("within") or DEFAULT_WINDOW
    if within not in WINDOWS:
        raise InvalidInput("within", f"must be one of {', '.join(WINDOWS)}, not {within!r}")
    offset = int_arg("offset", 0, 0)
    now = utcnow()
    keys, total = store.expiring_keys(WINDOWS[within][1], limit=KEYS_PER_PAGE, offset=offset, now=now,
                                      visible=principal().dags)
    context = dict(keys=keys, total=total, offset=offset, limit=KEYS_PER_PAGE, now=now, within=within,
                   windows=WINDOWS, self_url=request.full_path.removesuffix("?"))
    # The window's form asks htmx for the results alone; a history restore wants the page.
    if wants_fragment():
        return render_template("_expiring_results.html", **context)
    return render_template("expiring.html", **context, crumbs=[*breadcrumbs(), ("Expiring soon", None)])
