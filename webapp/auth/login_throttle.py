"""Throttle password guessing: after too many failed logins for one username from one
address, or from one address overall, within a window, further attempts are refused
without checking the password until the window has passed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from ..errors import ServiceError
from ..extensions import db
from ..models import LoginFailure, utcnow

WINDOW = timedelta(minutes=15)
MAX_PER_USER_AND_ADDRESS = 5
MAX_PER_ADDRESS = 20


class TooManyAttempts(ServiceError):
    status = 429
    reason = "too_many_attempts"


def check(username: str, remote_addr: str, now: datetime | None = None) -> None:
    """Raise TooManyAttempts when this username or address has failed too often lately."""
    since = (now or utcnow()) - WINDOW
    recent = select(func.count()).select_from(LoginFailure).where(LoginFailure.failed_at > since)
    per_pair = db.session.execute(
        recent.where(LoginFailure.username == username, LoginFailure.remote_addr == remote_addr)
    ).scalar_one()
    per_address = db.session.execute(recent.where(LoginFailure.remote_addr == remote_addr)).scalar_one()
    if per_pair >= MAX_PER_USER_AND_ADDRESS or per_address >= MAX_PER_ADDRESS:
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(f"Too many failed logins; try again in {minutes} minutes")


def record_failure(username: str, remote_addr: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - WINDOW))
    db.session.add(LoginFailure(username=username[:100], remote_addr=remote_addr[:64], failed_at=now))


def forget(username: str, remote_addr: str) -> None:
    """A successful login clears its own failures."""
    db.session.execute(
        delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.remote_addr == remote_addr)
    )
