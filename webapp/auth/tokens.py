"""Worker tokens: short-lived JWTs (HS256, the app's secret key) naming one task instance
in ``sub``, or a watcher (``sub`` = ``watcher:<name>``: a process that reads and writes
asset keys without being a task, like Airflow's asset watchers). Shaped like Airflow's
execution-API tokens so the same client code works."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from flask import current_app

from ..errors import InvalidInput

ALGORITHM = "HS256"
AUDIENCE = "urn:airflow.apache.org:task"
SCOPE = "execution"
LEEWAY_SECONDS = 10
# A response carries a fresh token once less than this share of the lifetime is left.
REFRESH_WHEN_REMAINING = 0.2


class TokenInvalid(Exception):
    """Missing, malformed, badly signed or expired: the caller is not authenticated."""


WATCHER_PREFIX = "watcher:"


@dataclass(frozen=True)
class WorkerToken:
    ti_id: str  # the subject: a task instance's id, or "watcher:<name>"
    issued_at: datetime
    expires_at: datetime

    @property
    def watcher(self) -> str | None:
        """The watcher's name, for a watcher's token; None for a task instance's."""
        return self.ti_id[len(WATCHER_PREFIX):] if self.ti_id.startswith(WATCHER_PREFIX) else None

    def needs_refresh(self, now: datetime) -> bool:
        lifetime = self.expires_at - self.issued_at
        return self.expires_at - now < lifetime * REFRESH_WHEN_REMAINING


def issue_for_watcher(name: str, now: datetime | None = None) -> tuple[str, datetime]:
    """A token for a named watcher: asset keys only, recorded as written by the watcher."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise InvalidInput("watcher", "must be 1 to 100 characters without control characters")
    return issue(WATCHER_PREFIX + name, now)


def issue(ti_id: uuid.UUID | str, now: datetime | None = None) -> tuple[str, datetime]:
    now = now or datetime.now(UTC)
    expires_at = now + timedelta(seconds=current_app.config["TASKSTORE"].token_lifetime_seconds)
    claims = {"sub": str(ti_id), "aud": AUDIENCE, "scope": SCOPE, "iat": now, "nbf": now, "exp": expires_at}
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM), expires_at


def verify(token: str, now: datetime | None = None) -> WorkerToken:
    worker_token = _verified(current_app.config["SECRET_KEY"], token)
    if (now or datetime.now(UTC)) > worker_token.expires_at + timedelta(seconds=LEEWAY_SECONDS):
        raise TokenInvalid("token has expired")
    return worker_token


@lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> WorkerToken:
    """What never changes for one token string: signature, audience, scope, claims. A worker
    sends the same token call after call, so each process checks it once; the expiry, which
    does change with time, ``verify`` checks on every call. Refusals are not cached."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp", "iat", "aud"], "verify_exp": False},
        )
    except jwt.InvalidTokenError as exc:
        raise TokenInvalid(f"invalid token ({exc})") from None
    if claims.get("scope") != SCOPE:
        raise TokenInvalid("not a task-store worker token")
    subject = str(claims["sub"])
    try:
        return WorkerToken(
            ti_id=subject if subject.startswith(WATCHER_PREFIX) else subject.lower(),
            issued_at=datetime.fromtimestamp(claims["iat"], UTC),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (TypeError, ValueError, OverflowError, OSError):
        raise TokenInvalid("invalid token (iat or exp is not a timestamp)") from None
