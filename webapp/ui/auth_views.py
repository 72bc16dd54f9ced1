"""Log in and out, and a person's own account: change the password, log out everywhere.
Every form carries a CSRF token (CSRFProtect checks every POST)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..auth import login_throttle, sessions, users
from ..errors import InvalidInput
from ..http import client_address
from ..transactions import committed
from . import bp, safe_next
from .helpers import actor


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired()])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD_LENGTH)])
    repeat = PasswordField("New password again", validators=[DataRequired(), EqualTo("new", "The passwords differ")])


class EmptyForm(FlaskForm):
    """A button: its CSRF token only."""


INVALID_LOGIN = "Invalid username or password."


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.args.get("next"))
    if g.user is not None and request.method == "GET":
        return redirect(target)
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        error, status = INVALID_LOGIN, 200
        username = form.username.data
        if users.USERNAME.fullmatch(username):  # a name that cannot exist needs no database
            try:
                attempt = login_throttle.reserve(username, client_address())
            except login_throttle.TooManyAttempts as exc:
                error, status = exc.message, exc.status
            else:
                user = users.authenticate(username, form.password.data)
                if user is not None:
                    def log_in():
                        login_throttle.succeeded(attempt, username)
                        return sessions.start(user)

                    token = committed(log_in)
                    session.clear()  # nothing from before the login carries over
                    session[sessions.TOKEN_KEY] = token
                    return redirect(target)
    return render_template("login.html", form=form, error=error, next=request.args.get("next", "")), status


@bp.post("/logout")
def logout():
    """End this session: the cookie, and the session row, so a copy of the cookie is dead too."""
    token = session.get(sessions.TOKEN_KEY)
    committed(lambda: sessions.end(token))
    session.clear()
    return redirect(url_for("ui.login"))


@bp.route("/account", methods=["GET", "POST"])
def account():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        if not users.check_password(g.user, form.current.data):
            form.current.errors = ["This is not your current password."]
            status = 422
        else:
            try:
                committed(lambda: users.set_password(g.user, form.new.data, actor=actor()))
            except InvalidInput as exc:
                form.new.errors = [exc.problem]
                status = 422
            else:
                session.clear()  # every session ended with the old password, this one too
                flash("Password changed. Log in again with the new one.", "success")
                return redirect(url_for("ui.login"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template("account.html", form=form, end_form=EmptyForm(formdata=None),
                           crumbs=[("Account", None)]), status


@bp.post("/account/logout-everywhere")
def logout_everywhere():
    form = EmptyForm()
    if form.validate_on_submit():
        committed(lambda: users.end_sessions(g.user, actor=actor()))
        session.clear()
    return redirect(url_for("ui.login"), code=303)
