"""The server-rendered admin UI: Jinja pages, WTForms, htmx for partial updates.

Every page needs a logged-in user (the session cookie holds the user's id); the user is
read again on each request, so a changed role or a deleted user takes effect at once."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, g, redirect, request, url_for

from ..auth import users, visibility
from . import helpers

bp = Blueprint("ui", __name__)
helpers.register(bp)
PUBLIC_ENDPOINTS = {"ui.login", "ui.logout"}


@bp.before_request
def load_user():
    g.user = users.logged_in()
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        return redirect(url_for("ui.login", next=request.full_path.removesuffix("?")))
    if g.user is not None:
        visibility.check_route(helpers.principal(), request.view_args)
    return None


def safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect would let a link log people in elsewhere.
    Control characters (CR, LF) could split the Location header: the default page instead."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(char) < 32 or ord(char) == 127 for char in target)):
        return url_for("ui.dags")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url_for("ui.dags")


from . import (  # noqa: E402,F401  (they add routes to bp)
    access,
    asset_views,
    auth_views,
    deleting,
    editing,
    expiring,
    json_check,
    key_files,
    keys,
    search,
    set_aside,
    views,
)
