"""A scope's keys as a JSON file a person downloads and uploads again: to keep a copy before
a risky change, to move a task's progress to another task instance, or to seed an asset's
watermarks. The file is::

    {"format": "taskstore-keys", "version": 1, "exported_at": "...", "of": {...},
     "keys": [{"key": "...", "value": <JSON>, "expires_at": "... or null"}, ...]}

An import is all or nothing: every entry is checked (key, value, expiry: the rules of any
edit) before anything is written, keys that exist are refused unless the person asked to
replace them, and each key written is recorded in the history as an import. ``of`` (whose
keys they were) is informative: importing into another task instance copies them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, InvalidInput
from ..extensions import db
from ..models import utcnow
from . import history
from .access import live_condition
from .edits import put_entry, remove_expired_leftovers
from .rules import check_value_size, encode_value, parse_json, parse_timestamp, validate_key
from .scopes import Scope

FORMAT = "taskstore-keys"
VERSION = 1
# An import writes each key with its history row in one transaction; past a few thousand
# keys that transaction holds its locks for seconds, so larger sets go in several files.
MAX_IMPORT_KEYS = 5000
_IN_BATCH = 500  # keys per "key IN (...)" when looking for existing ones


@dataclass(frozen=True)
class KeyToImport:
    key: str
    encoded_value: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ImportResult:
    created: int
    replaced: int


def export_document(scope: Scope, now: datetime | None = None) -> dict[str, Any]:
    """Every live key of the scope, ordered by key, with its expiry (expired keys are gone for
    workers and are not exported)."""
    now = now or utcnow()
    kind = scope.kind
    rows = scope_rows(scope, now)
    values = scope.row_values()
    return {
        "format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
        "of": {"kind": kind.name, **{name: values[name] for name in kind.labels}},
        "keys": [{"key": row.key, "value": parse_json(row.value),
                  **({"expires_at": row.expires_at.isoformat() if row.expires_at else None} if kind.expires else {})}
                 for row in rows],
    }


def scope_rows(scope: Scope, now: datetime) -> list:
    kind = scope.kind
    return db.session.execute(
        select(kind.column("key"), kind.column("value"), kind.column("expires_at"))
        .where(scope.condition(), live_condition(now, kind)).order_by(kind.column("key"))
    ).all()


def parse_key_file(raw: bytes | str, scope: Scope, *, max_value_bytes: int,
                   now: datetime | None = None) -> list[KeyToImport]:
    """Check an uploaded file whole; the first problem is an InvalidInput naming where it is
    (``keys[3].expires_at``)."""
    now = now or utcnow()
    document = parse_json(raw, "file")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidInput("file", 'must be a JSON object with a "keys" list, as an export writes')
    if document.get("format", FORMAT) != FORMAT:
        raise InvalidInput("file", f"is a {document['format']!r} file, not {FORMAT!r}")
    entries = document["keys"]
    if len(entries) > MAX_IMPORT_KEYS:
        raise InvalidInput("file", f"holds {len(entries)} keys; an import takes at most {MAX_IMPORT_KEYS}")
    seen: dict[str, int] = {}
    parsed = []
    for number, entry in enumerate(entries):
        where = f"keys[{number}]"
        parsed.append(_entry(entry, where, scope, max_value_bytes, now))
        key = parsed[-1].key
        if key in seen:
            raise InvalidInput(f"{where}.key", f"repeats keys[{seen[key]}] ({key!r})")
        seen[key] = number
    return parsed


def _entry(entry: Any, where: str, scope: Scope, max_value_bytes: int, now: datetime) -> KeyToImport:
    if not isinstance(entry, dict):
        raise InvalidInput(where, "must be an object with key and value")
    unknown = set(entry) - {"key", "value", "expires_at"}
    if unknown:
        raise InvalidInput(where, f"has unknown fields: {', '.join(sorted(unknown))}")
    try:
        key = entry.get("key")
        if not isinstance(key, str):
            raise InvalidInput("key", "must be a string")
        validate_key(key)
        if "value" not in entry:
            raise InvalidInput("value", "is missing")
        encoded = encode_value(entry["value"])
        check_value_size(encoded, max_value_bytes)
        expires_at = parse_timestamp(entry.get("expires_at"), "expires_at")
        if expires_at is not None and not scope.kind.expires:
            raise InvalidInput("expires_at", f"must be null: {scope.kind.name} keys never expire")
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at", f"{expires_at.isoformat()} is in the past")
    except InvalidInput as exc:
        raise InvalidInput(f"{where}.{exc.field}", exc.problem) from None
    return KeyToImport(key, encoded, expires_at)


def existing_keys(scope: Scope, keys: list[str], now: datetime) -> list[str]:
    kind = scope.kind
    found: list[str] = []
    for start in range(0, len(keys), _IN_BATCH):
        found += db.session.execute(
            select(kind.column("key")).where(scope.condition(), live_condition(now, kind),
                                             kind.column("key").in_(keys[start:start + _IN_BATCH]))
        ).scalars()
    return sorted(found)


def import_keys(scope: Scope, entries: list[KeyToImport], *, replace: bool, actor: str,
                now: datetime | None = None) -> ImportResult:
    """Write every entry (history action "import"), in the caller's transaction: a refusal
    part way rolls the whole import back. Keys that exist are refused (409, naming them)
    unless ``replace``, which rewrites them one by one as versioned edits; new keys go in with
    one INSERT and one history INSERT (5,000 keys one edit at a time held the transaction
    for 5 to 14 seconds). A worker creating one of them meanwhile refuses the import."""
    now = now or utcnow()
    existing = existing_keys(scope, [entry.key for entry in entries], now)
    if existing and not replace:
        shown = ", ".join(repr(key) for key in existing[:5]) + (" …" if len(existing) > 5 else "")
        raise Conflict(f"{len(existing)} of these keys already exist ({shown}); nothing was imported. "
                       "Choose to replace existing keys to overwrite them.", field="replace")
    to_replace = set(existing)
    for entry in entries:
        if entry.key in to_replace:
            put_entry(scope, entry.key, entry.encoded_value, entry.expires_at, actor=actor, now=now, action="import")
    new = [entry for entry in entries if entry.key not in to_replace]
    for start in range(0, len(new), _IN_BATCH):
        _insert_batch(scope, new[start:start + _IN_BATCH], actor, now)
    return ImportResult(created=len(new), replaced=len(existing))


def _insert_batch(scope: Scope, entries: list[KeyToImport], actor: str, now: datetime) -> None:
    kind = scope.kind
    remove_expired_leftovers(scope, [entry.key for entry in entries], now)
    whose, writer = scope.row_values(), kind.written_by_actor(actor)
    try:
        with db.session.begin_nested():
            db.session.execute(insert(kind.table), [
                {**whose, "key": entry.key, "value": entry.encoded_value, "expires_at": entry.expires_at,
                 "version": 1, "updated_at": now, **writer} for entry in entries])
    except IntegrityError:
        raise Conflict("A worker wrote one of these keys during the import; nothing was imported.",
                       field="replace") from None
    history.record_created(scope, [(entry.key, entry.encoded_value, entry.expires_at) for entry in entries],
                           actor=actor, action="import", now=now)
