"""History of the changes people (UI) and tools (admin API) make to stored keys: who,
when, which key, old and new value and expiry. Recorded in the change's own transaction,
so a change and its history row land together or not at all."""

from __future__ import annotations

from sqlalchemy import select

from . import store
from .extensions import db
from .models import KeyChange


def record(actor: str, action: str, scope: store.TaskInstanceScope, key: str, change: store.Change) -> None:
    before, after = change.before, change.after
    db.session.add(KeyChange(
        actor=actor, action=action, dag_id=scope.dag_id, run_id=scope.run_id, task_id=scope.task_id,
        map_index=scope.map_index, key=key,
        old_value=before.value_json if before else None, new_value=after.value_json if after else None,
        old_expires_at=before.expires_at if before else None, new_expires_at=after.expires_at if after else None,
    ))


def clear_recorded(actor: str, scope: store.TaskInstanceScope, *, all_map_indices: bool = False) -> int:
    """Clear through the store, with one history row per key that was there."""
    rows = store.rows_to_clear(scope, all_map_indices=all_map_indices)
    deleted = store.clear(scope, all_map_indices=all_map_indices)
    db.session.add_all(
        KeyChange(actor=actor, action="clear", dag_id=scope.dag_id, run_id=scope.run_id, task_id=scope.task_id,
                  map_index=row.map_index, key=row.key, old_value=row.value, old_expires_at=row.expires_at)
        for row in rows
    )
    return deleted


def for_task_instance(scope: store.TaskInstanceScope, limit: int = 50) -> list[KeyChange]:
    """The latest changes to this task instance's keys, newest first."""
    return list(db.session.execute(
        select(KeyChange).where(
            KeyChange.dag_id == scope.dag_id, KeyChange.run_id == scope.run_id,
            KeyChange.task_id == scope.task_id, KeyChange.map_index == scope.map_index,
        ).order_by(KeyChange.changed_at.desc(), KeyChange.id.desc()).limit(limit)
    ).scalars())
