"""What every response and request goes through, whoever serves it: security headers,
cookies, redirects, the client's address behind trusted proxies, and input no database can
store refused before any SQL runs."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import InvalidInput

# Scripts only from this origin (htmx, app.js), never inline or evaluated (htmx is configured
# with allowEval off); styles from app.css only; nothing may frame the UI.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# What no database here can store in a text column (PostgreSQL refuses NUL).
UNSTORABLE = "\x00"


def register(app: Flask) -> None:
    hops = app.config["TASKSTORE"].trusted_proxy_hops
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.before_request(refuse_unstorable_input)
    app.after_request(add_headers)


# The same headers, lower-cased once for the check of what a response has already set.
_HEADERS_BY_LOWER_NAME = [(name.lower(), name, value) for name, value in HEADERS.items()]


def add_headers(response: Response) -> Response:
    headers = response.headers
    # One pass over what the response set (each ``in`` or ``setdefault`` on werkzeug's headers
    # is a pass of its own, and these were a tenth of a worker call's Python time).
    present = {name.lower() for name, _value in headers}
    for lower, name, value in _HEADERS_BY_LOWER_NAME:
        if lower not in present:
            headers.add(name, value)
    if request.endpoint != "static":
        # Pages and API answers hold what a credential may read: no cache keeps a copy.
        headers["Cache-Control"] = "no-store"
    if "location" in present:
        # Werkzeug's own redirects (merging "//", adding a trailing slash) build an absolute URL
        # from the Host header; send the path alone, which no Host header can point elsewhere.
        target = urlsplit(headers["Location"])
        if target.netloc:
            headers["Location"] = (target.path or "/") + (f"?{target.query}" if target.query else "")
    return response


def refuse_unstorable_input() -> None:
    """422 naming the field, before any SQL, for a path segment or query parameter that is not
    UTF-8 (werkzeug would turn it into U+FFFD and merge different names) or holds a character
    no database can store."""
    _check_utf8(request.environ.get("PATH_INFO", ""), (request.view_args or {}).items(), "path")
    query = request.environ.get("QUERY_STRING", "")
    if query:
        _check_utf8(unquote_to_bytes(query.replace("+", " ")).decode("latin-1"), request.args.items(multi=True),
                    "query")
    for name, value in [*(request.view_args or {}).items(), *request.args.items(multi=True)]:
        if isinstance(value, str) and UNSTORABLE in value:
            raise InvalidInput(name, f"contains the control character U+0000 at position {value.index(UNSTORABLE)} "
                                     "(NUL, which no database can store)")


def _check_utf8(raw: str, decoded, where: str) -> None:
    try:
        raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        field = next((name for name, value in decoded if isinstance(value, str) and "\ufffd" in value), where)
        raise InvalidInput(field, "is not valid UTF-8 once percent-decoded") from None
