"""Server-side sessions for people logged in to the UI (and calling the admin API with their
cookie). The signed cookie carries only a random token; the session itself is a row, so
ending it (logout, a password or role change, disabling the user, "log out everywhere")
takes effect on every process at the next request, and a copied cookie is worth nothing
afterwards. Sessions also lapse after an idle timeout and an absolute lifetime."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..extensions import db
from ..models import User, UserSession, utcnow

TOKEN_KEY = "sid"  # the token's name in the signed cookie
# last_seen_at is written at most this often: a page view is not a database write each time.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(user: User, now: datetime | None = None) -> str:
    """A new session for ``user``; the token goes into the cookie (the caller commits)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    db.session.add(UserSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now))
    return token


def resume(token: object, *, idle: timedelta, lifetime: timedelta, now: datetime | None = None) -> User | None:
    """The user of a live session, or None when the token names none (ended, lapsed, the user
    disabled or deleted). Marks the session seen (at most once a minute)."""
    if not isinstance(token, str) or not token:
        return None
    now = now or utcnow()
    row = db.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))
    ).first()
    if row is None:
        return None
    session, user = row
    if user.disabled_at is not None or now - session.last_seen_at > idle or now - session.created_at > lifetime:
        return None
    if now - session.last_seen_at > TOUCH_EVERY:
        db.session.execute(update(UserSession).where(UserSession.id == session.id).values(last_seen_at=now))
    return user


def end(token: object, now: datetime | None = None) -> None:
    """End one session (logout)."""
    if isinstance(token, str) and token:
        db.session.execute(update(UserSession).where(UserSession.token_hash == _digest(token),
                                                     UserSession.ended_at.is_(None)).values(ended_at=now or utcnow()))


def end_all(user_id: int, now: datetime | None = None) -> int:
    """End every session of a user; how many were live."""
    return db.session.execute(
        update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now or utcnow())
    ).rowcount


def live_count(user_id: int, *, idle: timedelta, lifetime: timedelta, now: datetime | None = None) -> int:
    now = now or utcnow()
    return len(db.session.execute(
        select(UserSession.id).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None),
                                     UserSession.last_seen_at > now - idle, UserSession.created_at > now - lifetime)
    ).all())
