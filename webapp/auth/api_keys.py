"""Admin API keys and their lifecycle. The full key is shown once at creation; only its
SHA-256 digest is kept (the keys are 256-bit random tokens, so a slow password hash would add
latency without adding safety). A revoked key answers 401 on every process at its next use:
each request looks the key up. Every change is recorded in the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Select, bindparam, delete, select, update

from ..errors import Conflict, InvalidInput, NotFound
from ..extensions import db
from ..models import ApiKey, utcnow
from ..transactions import committed
from . import audit, name_patterns, roles

KEY_PREFIX = "tsk_"
SHOWN_PREFIX = len(KEY_PREFIX) + 6  # what lists show of a key: enough to tell keys apart
# last_used_at is written at most this often: a key's every call is not a write.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(name: str, role: str = "admin", *, actor: str = "cli",
           limits: name_patterns.Limits = name_patterns.UNLIMITED) -> tuple[ApiKey, str]:
    """Add a key and return it with its secret text (which is not stored); ``limits``: the
    DAGs and assets it may see (all by default)."""
    roles.validate(role, roles.KEY_ROLES)
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInput("name", "must be 1 to 100 characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise InvalidInput("name", "must not contain control characters")
    if _active_named(name):
        raise Conflict(f"An API key named {name!r} exists; revoke it first or choose another name", field="name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(name=name, prefix=key[:SHOWN_PREFIX], key_hash=_digest(key), role=role,
                    dag_patterns=limits.dags.text, asset_patterns=limits.assets.text)
    db.session.add(record)
    db.session.flush()  # its id and creation time, for the answer
    audit.record(actor, "api_key.create", name, f"role {role}, {limits.describe()}, {record.prefix}…")
    return record, key


@cache
def _live_key_by_digest() -> Select:
    """Built once: composing the expression took a third of every API-key call's lookup."""
    return select(ApiKey).where(ApiKey.key_hash == bindparam("digest"), ApiKey.revoked_at.is_(None))


def authenticate(key: str, now: datetime | None = None) -> ApiKey | None:
    """The key's record, unless it is unknown or revoked."""
    if not key.startswith(KEY_PREFIX):
        return None
    record = db.session.execute(_live_key_by_digest(), {"digest": _digest(key)}).scalar_one_or_none()
    now = now or utcnow()
    if record is not None and (record.last_used_at is None or now - record.last_used_at > TOUCH_EVERY):
        # Its own short transaction, before the request's work: a read-only call commits nothing else.
        committed(lambda: db.session.execute(update(ApiKey).where(ApiKey.id == record.id).values(last_used_at=now)))
    return record


def principal(record: ApiKey) -> roles.Principal:
    limits = name_patterns.Limits.of(record)
    return roles.Principal(f"api-key:{record.name}", record.role, limits.dags, limits.assets)


def set_limits(record: ApiKey, *, dags: str | None = None, assets: str | None = None, actor: str) -> None:
    changed = name_patterns.change(record, dags=dags, assets=assets)
    if changed:
        audit.record(actor, "api_key.set_limits", record.name, changed)


def _active_named(name: str) -> list[ApiKey]:
    return list(db.session.execute(
        select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))).scalars())


def list_all() -> list[ApiKey]:
    return list(db.session.execute(select(ApiKey).order_by(ApiKey.name, ApiKey.id)).scalars())


def get(key_id: int) -> ApiKey:
    record = db.session.get(ApiKey, key_id)
    if record is None:
        raise NotFound(f"No API key with id {key_id}", field="key")
    return record


def find(name_or_prefix: str) -> ApiKey:
    """One key by its name (the active key of that name) or by the prefix lists show."""
    if name_or_prefix.startswith(KEY_PREFIX):
        matches = list(db.session.execute(
            select(ApiKey).where(ApiKey.prefix == name_or_prefix[:SHOWN_PREFIX])).scalars())
    else:
        matches = _active_named(name_or_prefix) or list(db.session.execute(
            select(ApiKey).where(ApiKey.name == name_or_prefix)).scalars())
    if not matches:
        raise NotFound(f"No API key named or starting {name_or_prefix!r}", field="key")
    if len(matches) > 1:
        shown = ", ".join(record.prefix + "…" for record in matches)
        raise Conflict(f"{len(matches)} keys match {name_or_prefix!r} ({shown}); name one by its prefix",
                       field="key")
    return matches[0]


def revoke(record: ApiKey, *, actor: str) -> None:
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        audit.record(actor, "api_key.revoke", record.name, f"{record.prefix}…")


def remove(record: ApiKey, *, actor: str) -> None:
    name, prefix = record.name, record.prefix
    db.session.execute(delete(ApiKey).where(ApiKey.id == record.id))
    audit.record(actor, "api_key.delete", name, f"{prefix}…")
