"""Admin API keys. The full key is shown once at creation; only its SHA-256 digest is kept."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..errors import InvalidInput
from ..extensions import db
from ..models import ApiKey
from . import roles

KEY_PREFIX = "tsk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(name: str, role: str = "admin") -> tuple[ApiKey, str]:
    """Add a key and return it with its secret text (which is not stored)."""
    roles.validate(role)
    if not name or len(name) > 100:
        raise InvalidInput("name", "must be 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(name=name, prefix=key[: len(KEY_PREFIX) + 6], key_hash=_digest(key), role=role)
    db.session.add(record)
    return record, key


def authenticate(key: str) -> ApiKey | None:
    if not key.startswith(KEY_PREFIX):
        return None
    return db.session.execute(select(ApiKey).where(ApiKey.key_hash == _digest(key))).scalar_one_or_none()
