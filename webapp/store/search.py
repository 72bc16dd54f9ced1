"""Finding keys by name across all task instances (the UI's search page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import TaskState, utcnow
from .counting import capped_count
from .keys import _live


@dataclass(frozen=True)
class KeyHit:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    updated_at: datetime
    expires_at: datetime | None


def search_keys(substring: str, dag_id: str | None = None, *, limit: int, offset: int = 0,
                now: datetime | None = None) -> tuple[list[KeyHit], int]:
    """Live keys whose name contains ``substring``, ignoring case, across all task instances
    (or one DAG's), ordered by DAG, run, task, map index and key; one page and the total.

    The user's ``%``, ``_`` and the escape character match literally (``autoescape``). On
    PostgreSQL this is ILIKE, which the trigram index of migration 0006 serves; on SQLite plain
    LIKE, which ignores the case of ASCII letters by itself (LOWER() on both sides made a
    scan of a million keys three times slower); on MariaDB's binary collation LOWER() LIKE."""
    conditions = [_contains_ignoring_case(substring), _live(now or utcnow())]
    if dag_id:
        conditions.append(TaskState.dag_id == dag_id)
    rows = db.session.execute(
        select(TaskState.dag_id, TaskState.run_id, TaskState.task_id, TaskState.map_index, TaskState.key,
               TaskState.updated_at, TaskState.expires_at)
        .where(*conditions)
        .order_by(TaskState.dag_id, TaskState.run_id, TaskState.task_id, TaskState.map_index, TaskState.key)
        .limit(limit).offset(offset)
    ).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # a first page that is not full is every match: no second scan
    else:
        total = capped_count(select(TaskState.id).where(*conditions))
    return [KeyHit(*row) for row in rows], total


def _contains_ignoring_case(substring: str):
    if db.session.get_bind().dialect.name == "sqlite":
        return TaskState.key.contains(substring, autoescape=True)
    return TaskState.key.icontains(substring, autoescape=True)
