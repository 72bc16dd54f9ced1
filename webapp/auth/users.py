"""People who log in to the admin UI. Passwords are hashed with scrypt (Werkzeug), which
is slow on purpose: unlike API keys, passwords are chosen by people and can be guessed."""

from __future__ import annotations

import re
import secrets
from functools import cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, InvalidInput
from ..extensions import db
from ..models import User
from . import roles

USERNAME = re.compile(r"[\w.@+-]{1,100}")
MIN_PASSWORD_LENGTH = 8
HASH_METHOD = "scrypt"


@cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a failed login takes as long either
    way and the response time does not tell which usernames exist. Made on first use, not at
    import: scrypt takes 32 MB and 0.2 s, which every process would otherwise pay at start."""
    return generate_password_hash(secrets.token_urlsafe(16), method=HASH_METHOD)


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    return password


def create(username: str, password: str, role: str = "viewer") -> User:
    if not USERNAME.fullmatch(username or ""):
        raise InvalidInput("username", "must be 1 to 100 letters, digits or . _ @ + -")
    roles.validate(role)
    validate_password(password)
    if get_by_username(username) is not None:
        raise Conflict(f"User {username!r} already exists")
    user = User(username=username, password_hash=generate_password_hash(password, method=HASH_METHOD), role=role)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # created by someone else since our check; the caller rolls back
        raise Conflict(f"User {username!r} already exists") from None
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = generate_password_hash(validate_password(password), method=HASH_METHOD)


def check_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def authenticate(username: str, password: str) -> User | None:
    user = get_by_username(username)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password(user, password) else None


def get_by_username(username: str) -> User | None:
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def get(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def logged_in() -> User | None:
    """The user whose id the session cookie carries, read afresh: a deleted user or a
    changed role takes effect on the next request."""
    from flask import session

    user_id = session.get("user_id")
    return get(user_id) if isinstance(user_id, int) else None


def principal(user: User) -> roles.Principal:
    return roles.Principal(user.username, user.role)
