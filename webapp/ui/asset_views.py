"""The asset list: every registered asset with its key count and latest write, filtered by
part of the name or URI (a GET form; htmx swaps the table as one types), 50 a page. An
asset's own page is ``keys``' (the same page as a task instance's keys, ``owners``)."""

from __future__ import annotations

from flask import render_template, request

from .. import assets
from ..models import utcnow
from . import bp
from .helpers import breadcrumbs, int_arg, principal, wants_fragment

ASSETS_PER_PAGE = 50


def _pattern(name: str) -> str:
    text = request.args.get(name, "")
    return text if text.strip() else ""


@bp.get("/assets", endpoint="assets")
def asset_list():
    name, uri = _pattern("name"), _pattern("uri")
    offset = int_arg("offset", 0, 0)
    rows, total = assets.listing(limit=ASSETS_PER_PAGE, offset=offset, name_pattern=name or None,
                                 uri_pattern=uri or None, visible=principal().assets, reader_dags=principal().dags)
    context = dict(rows=rows, total=total, offset=offset, limit=ASSETS_PER_PAGE, name=name, uri=uri,
                   filtered=bool(name or uri), now=utcnow())
    # The filter form asks htmx for the table alone; a history restore wants the page.
    if wants_fragment():
        return render_template("_assets_table.html", **context)
    return render_template("assets.html", **context, crumbs=[*breadcrumbs(), ("Assets", None)])
