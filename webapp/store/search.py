"""Finding keys by name across all task instances (the UI's search page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, FromClause, column, inspect, literal_column, select, table

from ..extensions import db
from ..models import TaskState
from .counting import capped_count
from .keys import live_condition


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
    (or one DAG's), newest first; one page and the total (capped).

    Newest first is an order the databases can stream, so the query stops after one page
    however many keys match: sorted by DAG, run and task instead, a word found in 200,000 of
    1M keys took 250 ms to fetch and sort them all (bench/RESULTS.md), now 3-5 ms. "Newest" is
    the newest run, then key, on PostgreSQL and MariaDB; the newest key on SQLite, whose FTS5
    table streams in key order only.

    The user's ``%``, ``_`` and the escape character match literally (``autoescape``). On
    PostgreSQL this is ILIKE, which the trigram index of migration 0006 serves; on SQLite plain
    LIKE, which ignores the case of ASCII letters by itself, driven by the FTS5 trigram table of
    migration 0006 for substrings of 3 characters or more; on MariaDB's binary collation
    LOWER() LIKE, which reads keys newest first until it has a page."""
    source, conditions, newest_first = _matching(substring)
    conditions.append(live_condition(now))
    if dag_id:
        conditions.append(TaskState.dag_id == dag_id)
    rows = db.session.execute(
        select(TaskState.dag_id, TaskState.run_id, TaskState.task_id, TaskState.map_index, TaskState.key,
               TaskState.updated_at, TaskState.expires_at)
        .select_from(source).where(*conditions).order_by(*newest_first).limit(limit).offset(offset)
    ).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # a first page that is not full is every match: no second query
    else:
        total = capped_count(select(TaskState.id).select_from(source).where(*conditions))
    return [KeyHit(*row) for row in rows], total


SQLITE_KEY_INDEX = "task_state_key_search"  # FTS5, trigram tokenizer (migration 0006)
TRIGRAM = 3
_sqlite_key_index: dict[str, bool] = {}  # per database URL: does the FTS5 table exist?


def _matching(substring: str) -> tuple[FromClause, list, tuple[ColumnElement, ...]]:
    """Where to look, what a match is, and the newest-first order the database can stream."""
    bind = db.session.get_bind()
    state = TaskState.__table__
    if bind.dialect.name != "sqlite":
        # Newest run first, then newest key: PostgreSQL walks an index in that order with or
        # without a DAG (task_state_dag_idx, or the unique key's, then an incremental sort);
        # by key id alone it would walk every newer DAG's keys to reach an old DAG's.
        return state, [TaskState.key.icontains(substring, autoescape=True)], \
            (TaskState.dag_run_id.desc(), TaskState.id.desc())
    contains = TaskState.key.contains(substring, autoescape=True)
    if len(substring) < TRIGRAM or not _has_sqlite_key_index(bind):
        return state, [contains], (TaskState.id.desc(),)
    # The FTS5 phrase finds the rows holding the substring (folding case beyond ASCII) in rowid
    # order, which it streams only when the ORDER BY names its own rowid; LIKE keeps exactly the
    # matches it always has.
    index = table(SQLITE_KEY_INDEX, column("rowid"))
    phrase = '"' + substring.replace('"', '""') + '"'
    return (
        state.join(index, index.c.rowid == TaskState.id),
        [literal_column(SQLITE_KEY_INDEX).op("MATCH")(phrase), contains],
        (index.c.rowid.desc(),),
    )


def _has_sqlite_key_index(bind) -> bool:
    url = str(bind.url)
    if url not in _sqlite_key_index:
        _sqlite_key_index[url] = inspect(bind).has_table(SQLITE_KEY_INDEX)
    return _sqlite_key_index[url]
