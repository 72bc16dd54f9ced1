"""History of the changes people (UI) and tools (admin API) make to stored keys: who, when,
which key, old and new value and expiry. Only the store's edit operations write it, in the
change's own transaction, so a change and its history row land together or not at all, and
the history never shows a change that did not happen. Worker writes are not recorded: they
are the data, and recording them would double every write."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..models import KeyChange
from .entries import Change
from .scopes import Scope

ACTIONS = ("set", "extend", "delete", "clear", "move")


def _whose(scope: Scope, row: Any = None) -> dict[str, Any]:
    """The history columns naming the key's scope: the kind's labels, from the row when one
    is given (a clear of every map index records each key's own)."""
    values = scope.row_values()
    return {"scope_kind": scope.kind.name,
            **{name: getattr(row, name) if row is not None else values[name] for name in scope.kind.labels}}


def record(scope: Scope, key: str, change: Change, *, actor: str, action: str) -> None:
    before, after = change.before, change.after
    written_by = before.written_by if before else None
    db.session.add(KeyChange(
        actor=actor, action=action, key=key, **_whose(scope),
        try_number=written_by.get("try_number") if written_by else None,
        old_value=before.value_json if before else None, new_value=after.value_json if after else None,
        old_expires_at=before.expires_at if before else None, new_expires_at=after.expires_at if after else None,
    ))


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


def changes_for(scope: Scope, limit: int = 50) -> list[KeyChange]:
    """The latest changes to a scope's keys, newest first."""
    whose = _whose(scope)
    return list(db.session.execute(
        select(KeyChange).where(*(getattr(KeyChange, name) == value for name, value in whose.items()))
        .order_by(KeyChange.changed_at.desc(), KeyChange.id.desc()).limit(limit)
    ).scalars())
