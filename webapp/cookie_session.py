"""Flask's signed-cookie session, without its per-request cost when there is no cookie, and
Secure when the deployment says so (``cookie_secure``: always, never, or auto = when the
request came over HTTPS, which a trusted proxy reports in X-Forwarded-Proto)."""

from __future__ import annotations

from flask import request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask builds the cookie signer on every request before it looks for a cookie; the worker
    and admin APIs never send one, and that signer was a tenth of a worker call's CPU."""

    def open_session(self, app, request) -> SecureCookieSession | None:
        # No Cookie header at all (every worker call): not even the cookies are parsed.
        if "HTTP_COOKIE" not in request.environ or not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        mode = app.config["TASKSTORE"].cookie_secure
        return mode == "always" or (mode == "auto" and request.is_secure)
