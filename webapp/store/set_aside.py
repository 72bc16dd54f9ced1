"""Task keys set aside: written under one map key at a position whose task instance now has
another (the mapped list changed and the key's item is gone, or its new index already had the
key). Kept, never handed to a worker, listed for people, who delete them or move them to the
task instance their item belongs to (its map index, taking that task instance's map key)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from ..errors import Conflict, KeyNotFound
from ..extensions import db
from ..models import TaskState
from . import history
from .entries import Change, Entry
from .rules import validate_key
from .scopes import TaskInstanceScope


def _columns():
    return (TaskState.id, TaskState.key, TaskState.value, TaskState.version, TaskState.updated_at,
            TaskState.expires_at, TaskState.map_key, TaskState.written_by_try)


def list_set_aside(scope: TaskInstanceScope) -> list[tuple[Entry, str | None]]:
    """The keys set aside at this task instance's position, with the map key each was written under."""
    rows = db.session.execute(select(*_columns()).where(scope.set_aside()).order_by(TaskState.key)).all()
    return [(_entry(row), row.map_key) for row in rows]


def _entry(row) -> Entry:
    return Entry(row.id, row.key, row.value, row.version, row.updated_at, row.expires_at,
                 written_by=None if row.written_by_try is None else {"try_number": row.written_by_try})


def _get(scope: TaskInstanceScope, key: str):
    validate_key(key)
    row = db.session.execute(select(*_columns()).where(scope.set_aside(), TaskState.key == key)).first()
    if row is None:
        raise KeyNotFound(key)
    return row


def delete_set_aside(scope: TaskInstanceScope, key: str, *, actor: str) -> None:
    row = _get(scope, key)
    db.session.execute(delete(TaskState).where(TaskState.id == row.id))
    history.record(scope, key, Change(_entry(row), None), actor=actor, action="delete")


def move_set_aside(scope: TaskInstanceScope, key: str, target: TaskInstanceScope, *, actor: str) -> Entry:
    """Hand a set-aside key to ``target`` (this task instance or another map index of the
    task): it takes the target's position and map key. Refused when the target has the key."""
    row = _get(scope, key)
    taken = db.session.execute(
        select(TaskState.id).where(TaskState.dag_run_id == target.dag_run_id, TaskState.task_id == target.task_id,
                                   TaskState.map_index == target.map_index, TaskState.key == key,
                                   TaskState.id != row.id)
    ).first()
    if taken is not None:
        raise Conflict(f"Map index {target.map_index} already has a key named {key!r}", field="key")
    db.session.execute(update(TaskState).where(TaskState.id == row.id).values(
        map_index=target.map_index, map_key=target.map_key, parked_from=None, version=TaskState.version + 1))
    moved = Entry(row.id, row.key, row.value, row.version + 1, row.updated_at, row.expires_at)
    history.record(target, key, Change(None, moved), actor=actor, action="move")
    return moved
