"""Task keys about to expire, across every task instance (the UI's "Expiring soon" page), so
a person can extend a key before a task that resumes from it loses it. Asset keys never expire.

The page is one range of ``task_state_expires_at_idx`` (migration 0001) read in order: the
database walks the index from now to the end of the window and stops after one page,
however many keys the store holds; expires_at then id is also the order that index holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select

from ..auth import name_patterns
from ..extensions import db
from ..models import TaskInstance, TaskState, utcnow
from .counting import capped_count
from .entries import Entry


@dataclass(frozen=True)
class ExpiringKey:
    """A key with the task instance it belongs to. A key set aside (written for another item
    of a mapped list, see ``set_aside``) is listed at its task instance's position, but is not
    that task instance's key: it cannot be extended from there."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    entry: Entry
    set_aside: bool


def expiring_keys(within: timedelta, *, limit: int, offset: int = 0, now: datetime | None = None,
                  visible=None) -> tuple[list[ExpiringKey], int]:
    """Live task keys that expire within ``within`` of ``now``, soonest first, of the DAGs
    ``visible`` allows; one page and the total (capped)."""
    now = now or utcnow()
    conditions = [TaskState.expires_at > now, TaskState.expires_at <= now + within,
                  *name_patterns.where(visible, TaskState.dag_id)]
    # A parked key (off the positions) remembers its position in parked_from.
    position = func.coalesce(TaskState.parked_from, TaskState.map_index)
    holder = and_(TaskInstance.dag_run_id == TaskState.dag_run_id, TaskInstance.task_id == TaskState.task_id,
                  TaskInstance.map_index == position)
    rows = db.session.execute(
        select(TaskState.id, TaskState.key, TaskState.value, TaskState.version, TaskState.updated_at,
               TaskState.expires_at, TaskState.dag_id, TaskState.run_id, TaskState.task_id,
               position.label("position"), TaskState.parked_from, TaskState.map_key,
               TaskInstance.id.label("holder_id"), TaskInstance.map_key.label("holder_map_key"))
        .select_from(TaskState).outerjoin(TaskInstance, holder)
        .where(*conditions).order_by(TaskState.expires_at, TaskState.id).limit(limit).offset(offset)
    ).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # a first page that is not full is every match: no second query
    else:
        total = capped_count(select(TaskState.id).where(*conditions))
    return [_expiring(row) for row in rows], total


def _expiring(row) -> ExpiringKey:
    entry = Entry(row.id, row.key, row.value, row.version, row.updated_at, row.expires_at)
    handed = row.holder_id is not None and row.parked_from is None and row.map_key == row.holder_map_key
    return ExpiringKey(row.dag_id, row.run_id, row.task_id, row.position, entry, set_aside=not handed)
