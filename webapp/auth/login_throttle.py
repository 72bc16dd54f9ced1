"""Throttle password guessing, in the database so every process counts the same attempts.

Each attempt is recorded *before* its password is checked, in its own transaction, and then
the attempts are counted, this one included: of any number of parallel guesses, the one whose
row came after the limit sees more than the limit and is refused, so no race lets more than
the limit through. A successful login removes its own attempt and its username's failures.

Two limits, neither of which can lock everybody out at once:
- per username, from any address: guessing one person's password is slow wherever it comes from;
- per client address, across usernames, only when the address is the client's own: a direct
  connection, or one through the configured number of trusted proxies. Behind a proxy that is
  not configured as trusted, every person shares the proxy's address, and a per-address limit
  would lock them all out after one person's mistakes; only the per-username limit applies."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from .. import metrics
from ..errors import ServiceError
from ..extensions import db
from ..models import LoginFailure, utcnow
from ..transactions import committed

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 10
MAX_PER_ADDRESS = 20


class TooManyAttempts(ServiceError):
    status = 429
    reason = "too_many_attempts"


def reserve(username: str, remote_addr: str | None, now: datetime | None = None) -> int:
    """Record an attempt (committed at once) and refuse it when it is over a limit; the
    attempt's id, for ``succeeded`` to take back. ``remote_addr`` None: not the client's own."""
    now = now or utcnow()
    username = username[:100]

    def record() -> int:
        db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - WINDOW))
        attempt = LoginFailure(username=username, remote_addr=(remote_addr or "untrusted")[:64], failed_at=now)
        db.session.add(attempt)
        db.session.flush()
        return attempt.id

    attempt_id = committed(record)
    # Every attempt committed so far, this one included: whichever of racing attempts counts
    # last sees all of those that passed, so no more than the limit can pass.
    recent = select(func.count()).select_from(LoginFailure).where(LoginFailure.failed_at > now - WINDOW)
    over = db.session.execute(recent.where(LoginFailure.username == username)).scalar_one() > MAX_PER_USERNAME
    if remote_addr is not None and not over:
        over = db.session.execute(recent.where(LoginFailure.remote_addr == remote_addr)).scalar_one() > MAX_PER_ADDRESS
    if over:
        metrics.count_login_throttled()
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(f"Too many failed logins; try again in {minutes} minutes")
    return attempt_id


def succeeded(attempt_id: int, username: str) -> None:
    """A successful login takes back its attempt and clears its username's failures."""
    db.session.execute(delete(LoginFailure).where(
        (LoginFailure.id == attempt_id) | (LoginFailure.username == username[:100])))
