"""Log in and out. Both are forms with a CSRF token (CSRFProtect checks every POST)."""

from __future__ import annotations

from flask import g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..auth import users
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
    error = None
    if form.validate_on_submit():
        user = users.authenticate(form.username.data, form.password.data)
        if user is not None:
            session.clear()  # nothing from before the login carries over
            session["user_id"] = user.id
            return redirect(target)
        error = "Invalid username or password."
    return render_template("login.html", form=form, error=error, next=request.args.get("next", ""))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("ui.login"))
