"""History of the changes people (UI) and tools (admin API) make to stored keys: who, when,
which key, old and new value and expiry. Only the store's edit operations write it, in the
change's own transaction, so a change and its history row land together or not at all, and
the history never shows a change that did not happen. Worker writes are not recorded: they
are the data, and recording them would double every write."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..errors import InvalidInput
from ..extensions import db
from ..models import KEY_LENGTH, KeyChange
from .entries import Change
from .scopes import Scope

ACTOR_LENGTH = KeyChange.__table__.c.actor.type.length
ACTIONS = ("set", "extend", "delete", "clear", "move", "restore", "import")


def _whose(scope: Scope, row: Any = None) -> dict[str, Any]:
    """The history columns naming the key's scope: the kind's labels, from the row when one
    is given (a clear of every map index records each key's own)."""
    values = scope.row_values()
    return {"scope_kind": scope.kind.name,
            **{name: getattr(row, name) if row is not None else values[name] for name in scope.kind.labels}}


def record(scope: Scope, key: str, change: Change, *, actor: str, action: str) -> Change:
    """Add the history row of ``change``; the change comes back naming that row."""
    before, after = change.before, change.after
    written_by = before.written_by if before else None
    row = KeyChange(
        actor=actor, action=action, key=key, **_whose(scope),
        try_number=written_by.get("try_number") if written_by else None,
        old_value=before.value_json if before else None, new_value=after.value_json if after else None,
        old_expires_at=before.expires_at if before else None, new_expires_at=after.expires_at if after else None,
    )
    db.session.add(row)
    db.session.flush()
    return dataclasses.replace(change, history_id=row.id)


def record_created(scope: Scope, created: Iterable[tuple[str, str, Any]], *, actor: str, action: str,
                   now: datetime) -> None:
    """One row per key created in bulk (an import): ``created`` holds (key, value, expires_at)."""
    whose = _whose(scope)
    db.session.add_all(
        KeyChange(changed_at=now, actor=actor, action=action, key=key, **whose, new_value=value,
                  new_expires_at=expires_at)
        for key, value, expires_at in created
    )


def record_cleared(scope: Scope, rows: Iterable[Any], *, actor: str) -> None:
    """One row per key a clear removed; ``rows`` carry the kind's labels, key, value and expiry."""
    kind = scope.kind

    def try_of(row) -> int | None:
        written_by = kind.describe_writer(tuple(getattr(row, name) for name in kind.writer_columns)) \
            if kind.writer_columns else None
        return written_by.get("try_number") if written_by else None

    db.session.add_all(
        KeyChange(actor=actor, action="clear", key=row.key, **_whose(scope, row), try_number=try_of(row),
                  old_value=row.value, old_expires_at=row.expires_at)
        for row in rows
    )


@dataclass(frozen=True)
class HistoryFilter:
    """Which of a scope's changes a history listing shows: a key containing ``key``, one
    person or tool (``actor``), one ``action``; ``before``: only changes older than that row id
    (the next page)."""

    key: str = ""
    actor: str = ""
    action: str = ""
    before: int | None = None

    def __post_init__(self):
        if self.action and self.action not in ACTIONS:
            raise InvalidInput("action", f"must be one of {', '.join(ACTIONS)}")
        if len(self.key) > KEY_LENGTH:
            raise InvalidInput("key", f"is {len(self.key)} characters long; the limit is {KEY_LENGTH}")
        if len(self.actor) > ACTOR_LENGTH:
            raise InvalidInput("actor", f"is {len(self.actor)} characters long; the limit is {ACTOR_LENGTH}")

    @property
    def narrows(self) -> bool:
        return bool(self.key or self.actor or self.action)


def _of_scope(scope: Scope) -> list:
    return [getattr(KeyChange, name) == value for name, value in _whose(scope).items()]


def changes_for(scope: Scope, limit: int = 50, only: HistoryFilter = HistoryFilter()) -> tuple[list[KeyChange], bool]:
    """A scope's changes, newest first (by row id: ids grow with time and never tie), one page
    of ``limit``, and whether older ones follow."""
    conditions = _of_scope(scope)
    if only.key:
        conditions.append(KeyChange.key.icontains(only.key, autoescape=True))
    if only.actor:
        conditions.append(KeyChange.actor == only.actor)
    if only.action:
        conditions.append(KeyChange.action == only.action)
    if only.before is not None:
        conditions.append(KeyChange.id < only.before)
    rows = list(db.session.execute(
        select(KeyChange).where(*conditions).order_by(KeyChange.id.desc()).limit(limit + 1)
    ).scalars())
    return rows[:limit], len(rows) > limit


def actors_of(scope: Scope, limit: int = 100) -> list[str]:
    """Who changed a scope's keys (people, API keys): the history's "Who" filter offers them."""
    return list(db.session.execute(
        select(KeyChange.actor).where(*_of_scope(scope)).distinct().order_by(KeyChange.actor).limit(limit)
    ).scalars())


def latest_change_if(scope: Scope, change_id: int, *, action: str) -> KeyChange | None:
    """History row ``change_id`` when it is ``action`` on this scope's key and still the latest
    change recorded for that key, else None."""
    change = db.session.get(KeyChange, change_id)
    if change is None or change.action != action or any(
            getattr(change, name) != value for name, value in _whose(scope).items()):
        return None
    newer = db.session.execute(
        select(KeyChange.id).where(*_of_scope(scope), KeyChange.key == change.key, KeyChange.id > change.id).limit(1)
    ).first()
    return None if newer else change


def describe(change: KeyChange) -> str:
    """How the history names a change: an expiry-only set, a first write and a restore say so."""
    if change.action == "set":
        if change.old_value is None:
            return "created"
        if change.old_value == change.new_value:
            return "expiry changed" if change.old_expires_at != change.new_expires_at else "saved unchanged"
        return "value changed" if change.old_expires_at == change.new_expires_at else "value and expiry changed"
    return {"extend": "extended", "delete": "deleted", "clear": "cleared", "move": "moved", "restore": "restored",
            "import": "imported"}.get(change.action, change.action)
