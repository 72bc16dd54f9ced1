"""Request helpers shared by the JSON API and the UI: neither imports the other, both use these."""

from __future__ import annotations

from flask import request
from werkzeug.routing import IntegerConverter, PathConverter

from .errors import InvalidInput
from .models import INT_MAX  # the request helpers bound numbers by the columns' range


class KeyConverter(PathConverter):
    """The rest of the path, whatever it holds. Werkzeug's ``path`` matches no key that starts
    with "/" or holds a newline, and merges "//" by redirecting; a key may be any of these
    (control characters then get validation's clear 422)."""

    regex = "(?s:.+)"
    part_isolating = False


class RowIdConverter(IntegerConverter):
    """A row id in a path (``<rowid:asset_id>``): 1 to the column's maximum. Beyond it no row
    can exist, so the route does not match (404) instead of the number reaching a database
    that cannot bind it (SQLite refuses integers past 64 bits)."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=INT_MAX)


# The path converters routes use (``<storekey:key>``, ``<rowid:asset_id>``): registered on an
# app before the blueprints whose rules name them.
CONVERTERS = {"storekey": KeyConverter, "rowid": RowIdConverter}


def int_arg(name: str, default: int | None, minimum: int, maximum: int = INT_MAX, *,
            empty_is_default: bool = False) -> int | None:
    """An integer query parameter within bounds, or 422 naming it. Browser forms send empty
    fields as ``name=``; the UI counts those as absent, the API as a mistake."""
    raw = request.args.get(name)
    if raw is None or (empty_is_default and raw == ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(name, f"must be an integer, not {raw!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidInput(name, f"must be between {minimum} and {maximum}")
    return value


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def client_address() -> str | None:
    """The client's own address, or None when it cannot be known: the request came through a
    proxy (it says X-Forwarded-For) that is not configured as trusted, so ``remote_addr`` is
    the proxy's, shared by everyone behind it. With ``trusted_proxy_hops`` set, werkzeug's
    ProxyFix has already put the client's address in ``remote_addr``."""
    from flask import current_app

    if current_app.config["TASKSTORE"].trusted_proxy_hops == 0 and "X-Forwarded-For" in request.headers:
        return None
    return request.remote_addr
