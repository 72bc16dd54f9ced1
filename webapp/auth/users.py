"""People who log in to the admin UI, and their lifecycle: create, change role or password,
disable and enable, delete, end their sessions. Every change ends the user's sessions where
it changes what they may do, and is recorded in the audit log with who made it.

Passwords are hashed with scrypt (Werkzeug), which is slow on purpose: unlike API keys,
passwords are chosen by people and can be guessed."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import db
from ..models import User, utcnow
from . import audit, name_patterns, roles, sessions

USERNAME = re.compile(r"[\w.@+-]{1,100}")
MIN_PASSWORD_LENGTH = 8
HASH_METHOD = "scrypt"


@cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a failed login takes as long either
    way and the response time does not tell which usernames exist. Made on first use, not at
    import: scrypt takes 32 MB and 0.2 s, which every process would otherwise pay at start."""
    return generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)


def validate_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise InvalidInput("username", "must be 1 to 100 letters, digits or . _ @ + -")
    return username


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def create(username: str, password: str, role: str = "viewer", *, actor: str = "cli",
           limits: name_patterns.Limits = name_patterns.UNLIMITED) -> User:
    """A person; ``limits``: the DAGs and assets they may see (all by default)."""
    validate_username(username)
    roles.validate(role)
    validate_password(password)
    if get_by_username(username) is not None:
        raise Conflict(f"User {username!r} already exists", field="username")
    user = User(username=username, password_hash=generate_password_hash(password, method=HASH_METHOD), role=role,
                dag_patterns=limits.dags.text, asset_patterns=limits.assets.text)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # created by someone else since our check; the caller rolls back
        raise Conflict(f"User {username!r} already exists", field="username") from None
    audit.record(actor, "user.create", username, f"role {role}, {limits.describe()}")
    return user


def get_by_username(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def require(username: str) -> User:
    user = get_by_username(username) if USERNAME.fullmatch(username or "") else None
    if user is None:
        raise NotFound(f"User {username!r} not found", field="username")
    return user


def list_all() -> list[User]:
    return list(db.session.execute(select(User).order_by(User.username)).scalars())


def set_password(user: User, password: str, *, actor: str) -> None:
    """A new password ends every session the user had: whoever knew the old one is out."""
    user.password_hash = generate_password_hash(validate_password(password), method=HASH_METHOD)
    ended = sessions.end_all(user.id)
    audit.record(actor, "user.set_password", user.username, f"{ended} sessions ended")


def set_role(user: User, role: str, *, actor: str) -> None:
    roles.validate(role)
    if role == user.role:
        return
    before, user.role = user.role, role
    ended = sessions.end_all(user.id)
    audit.record(actor, "user.set_role", user.username, f"{before} -> {role}; {ended} sessions ended")


def set_limits(user: User, *, dags: str | None = None, assets: str | None = None, actor: str) -> None:
    """Change the DAGs and assets a user sees; pages follow at their next request."""
    changed = name_patterns.change(user, dags=dags, assets=assets)
    if changed:
        audit.record(actor, "user.set_limits", user.username, changed)


def disable(user: User, *, actor: str) -> None:
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        ended = sessions.end_all(user.id)
        audit.record(actor, "user.disable", user.username, f"{ended} sessions ended")


def enable(user: User, *, actor: str) -> None:
    if user.disabled_at is not None:
        user.disabled_at = None
        audit.record(actor, "user.enable", user.username)


def remove(user: User, *, actor: str) -> None:
    username = user.username
    db.session.execute(delete(User).where(User.id == user.id))  # sessions go with it (ON DELETE CASCADE)
    audit.record(actor, "user.delete", username)


def end_sessions(user: User, *, actor: str) -> int:
    ended = sessions.end_all(user.id)
    audit.record(actor, "user.end_sessions", user.username, f"{ended} sessions ended")
    return ended


def check_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def authenticate(username: str, password: str) -> User | None:
    """The user, when the password is right and the user may log in; None otherwise, in
    about the same time either way."""
    user = get_by_username(username) if USERNAME.fullmatch(username or "") else None
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password(user, password) or user.disabled_at is not None:
        return None
    return user


def logged_in() -> User | None:
    """The user of the request's session, read afresh: an ended session, a disabled or deleted
    user, a lapsed idle or absolute lifetime all mean nobody is logged in."""
    from flask import current_app, session

    settings = current_app.config["TASKSTORE"]
    return sessions.resume(
        session.get(sessions.TOKEN_KEY),
        idle=timedelta(minutes=settings.session_idle_timeout_minutes),
        lifetime=timedelta(hours=settings.session_lifetime_hours),
    )


def principal(user: User) -> roles.Principal:
    limits = name_patterns.Limits.of(user)
    return roles.Principal(user.username, user.role, limits.dags, limits.assets)
