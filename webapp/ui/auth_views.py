"""Log in and out. Both are forms with a CSRF token (CSRFProtect checks every POST)."""

from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..auth import login_throttle, users
from ..transactions import committed
from . import bp, safe_next


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.args.get("next"))
    if g.user is not None and request.method == "GET":
        return redirect(target)
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        username, address = form.username.data, request.remote_addr or "unknown"
        try:
            login_throttle.check(username, address)
        except login_throttle.TooManyAttempts as exc:
            error, status = exc.message, exc.status
        else:
            user = users.authenticate(username, form.password.data)
            if user is not None:
                committed(lambda: login_throttle.forget(username, address))
                session.clear()  # nothing from before the login carries over
                session["user_id"] = user.id
                return redirect(target)
            committed(lambda: login_throttle.record_failure(username, address))
            error = "Invalid username or password."
    return render_template("login.html", form=form, error=error, next=request.args.get("next", "")), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("ui.login"))
