"""The admins' page for credentials: people (role, disable/enable, log out everywhere,
delete), API keys (revoke, delete) and the audit log. Each button is a small POST form; the
rules and the audit entries are ``webapp.auth``'s."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from wtforms import SelectField

from ..auth import api_keys, audit, users
from ..auth.roles import ROLES
from ..errors import ServiceError
from ..models import utcnow
from ..transactions import committed
from . import bp
from .auth_views import EmptyForm
from .helpers import actor, breadcrumbs, principal

AUDIT_ROWS = 50


class RoleForm(EmptyForm):
    role = SelectField("Role", choices=list(ROLES))


@bp.get("/access")
def access():
    principal().require_access_admin()
    events, total = audit.latest(AUDIT_ROWS)
    return render_template("access.html", users=users.list_all(), api_keys=api_keys.list_all(), events=events,
                           now=utcnow(),
                           events_total=total, form=EmptyForm(formdata=None), role_form=RoleForm(formdata=None),
                           roles=ROLES, crumbs=[*breadcrumbs(), ("Access", None)])


USER_ACTIONS = {
    "disable": lambda user, who: users.disable(user, actor=who),
    "enable": lambda user, who: users.enable(user, actor=who),
    "logout-everywhere": lambda user, who: users.end_sessions(user, actor=who),
    "delete": lambda user, who: users.remove(user, actor=who),
}
KEY_ACTIONS = {
    "revoke": lambda record, who: api_keys.revoke(record, actor=who),
    "delete": lambda record, who: api_keys.remove(record, actor=who),
}


# CSRFProtect has checked every POST's token before these run.


@bp.post("/access/users/<username>/<action>")
def change_user(username: str, action: str):
    principal().require_access_admin()
    if action == "role":
        form = RoleForm()
        if not form.validate():
            abort(422)
        role = form.role.data
        change = lambda user, who: users.set_role(user, role, actor=who)  # noqa: E731
    elif action in USER_ACTIONS:
        change = USER_ACTIONS[action]
    else:
        abort(404)
    return _apply(lambda: change(users.require(username), actor()), f"{action.replace('-', ' ')}: {username}")


@bp.post("/access/api-keys/<rowid:key_id>/<action>")
def change_api_key(key_id: int, action: str):
    principal().require_access_admin()
    if action not in KEY_ACTIONS:
        abort(404)
    return _apply(lambda: KEY_ACTIONS[action](api_keys.get(key_id), actor()), f"API key {action}d")


def _apply(work, done: str):
    try:
        committed(work)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(done[0].upper() + done[1:] + ".", "success")
    return redirect(url_for("ui.access") + ("#keys" if "/api-keys/" in request.path else ""), code=303)
