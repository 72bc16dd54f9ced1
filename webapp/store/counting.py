"""Key counts for the listings.

Counts that stop: counting every key of a DAG (or every match of a search) among a million
rows takes seconds on each page view, so counting stops at a cap and the pages say "more
than" instead. At 10,000 the DAG list of 20 DAGs still took 155-190 ms over 1M keys; a person
reads "more than 1,000" the same way. Counts of one page's runs or task instances are exact:
one GROUP BY restricted to the ids on the page, never a query per row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, literal_column, select, tuple_, union_all

from ..auth import name_patterns
from ..extensions import db
from ..models import AssetState, TaskState
from .access import live_condition
from .asset_keys import ASSET_KEYS, describe_writer
from .scopes import TASK_KEYS, Scope, ScopeKind

COUNT_CAP = 1_000


def capped_count(query) -> int:
    """The number of rows ``query`` gives, or COUNT_CAP + 1 when there are more than COUNT_CAP."""
    limited = query.limit(COUNT_CAP + 1).subquery()
    return db.session.execute(select(func.count()).select_from(limited)).scalar_one()


def dag_key_counts_by_dag(dag_ids: list[str], now: datetime | None = None) -> dict[str, tuple[int, int]]:
    """Each DAG's task instances holding live keys, and its live keys (both capped), in one
    statement for a page of DAGs: a UNION ALL of each DAG's two capped counts, so each still
    stops at the cap."""
    if not dag_ids:
        return {}
    parts = []
    for position, dag_id in enumerate(dag_ids):
        live = (TaskState.dag_id == dag_id, live_condition(now))
        holders = select(TaskState.dag_run_id, TaskState.task_id, TaskState.map_index).where(*live).distinct()
        keys = select(TaskState.id).where(*live)
        parts.append(select(literal_column(str(position)).label("position"),
                            *(select(func.count()).select_from(query.limit(COUNT_CAP + 1).subquery()).scalar_subquery()
                              for query in (holders, keys))))
    rows = db.session.execute(union_all(*parts) if len(parts) > 1 else parts[0]).all()
    return {dag_ids[int(position)]: (holders, keys) for position, holders, keys in rows}


def live_and_expired(kind: ScopeKind, condition, now: datetime | None = None) -> tuple[int, int]:
    """How many keys matching ``condition`` are live, and how many have expired but wait for
    ``taskstore clean``, exactly, in one statement."""
    live = live_condition(now, kind)
    counts = db.session.execute(
        select(func.count(case((live, 1))), func.count(case((~live, 1)))).select_from(kind.table).where(condition)
    ).one()
    return counts[0], counts[1]


def run_key_counts(dag_run_id: int, now: datetime | None = None) -> tuple[int, int]:
    """A run's keys: live ones, and expired ones not yet removed."""
    return live_and_expired(TASK_KEYS, TaskState.dag_run_id == dag_run_id, now)


def count_entries(scope: Scope, now: datetime | None = None) -> tuple[int, int]:
    """A scope's keys: live ones, and expired ones not yet removed (a page of keys' count)."""
    return live_and_expired(scope.kind, scope.condition(), now)


def key_counts_by_run(run_ids: list[int], now: datetime | None = None) -> dict[int, int]:
    """Live keys of each of these runs (by dag_run row id)."""
    if not run_ids:
        return {}
    return dict(db.session.execute(
        select(TaskState.dag_run_id, func.count())
        .where(TaskState.dag_run_id.in_(run_ids), live_condition(now)).group_by(TaskState.dag_run_id)
    ).all())


def key_counts_by_task_instance(dag_run_id: int, task_ids: list[str],
                                now: datetime | None = None) -> dict[tuple[str, int], int]:
    """Live keys of these tasks' instances in one run, by (task_id, map_index)."""
    if not task_ids:
        return {}
    return {
        (task_id, map_index): count
        for task_id, map_index, count in db.session.execute(
            select(TaskState.task_id, TaskState.map_index, func.count())
            .where(TaskState.dag_run_id == dag_run_id, TaskState.task_id.in_(task_ids), live_condition(now))
            .group_by(TaskState.task_id, TaskState.map_index)
        )
    }


def asset_key_summaries(asset_ids: list[int], *, reader_dags: name_patterns.NamePatterns
                        ) -> dict[int, tuple[int, datetime | None, dict | None]]:
    """For each of these assets: its key count, its latest write and who made it, as a reader
    seeing ``reader_dags`` may see it (``asset_keys.describe_writer``); two queries for a page
    of assets, never one per asset."""
    if not asset_ids:
        return {}
    counts = {asset_id: (count, latest) for asset_id, count, latest in db.session.execute(
        select(AssetState.asset_id, func.count(), func.max(AssetState.updated_at))
        .where(AssetState.asset_id.in_(asset_ids)).group_by(AssetState.asset_id)
    )}
    writers: dict[int, dict | None] = {}
    if counts:
        latest = [(asset_id, at) for asset_id, (_count, at) in counts.items()]
        rows = db.session.execute(
            select(AssetState.asset_id, *(AssetState.__table__.c[name] for name in ASSET_KEYS.writer_columns))
            .where(tuple_(AssetState.asset_id, AssetState.updated_at).in_(latest))
        )
        for row in rows:
            writers[row[0]] = describe_writer(tuple(row[1:]), reader_dags)
    return {asset_id: (count, at, writers.get(asset_id)) for asset_id, (count, at) in counts.items()}


def asset_keys_written_by(dag_id: str, run_id: str, task_id: str, map_index: int, *, visible=None) -> list:
    """The asset keys a task instance wrote last: asset id and name, key, updated_at (only of
    the assets ``visible`` allows)."""
    return db.session.execute(
        select(AssetState.asset_id, AssetState.asset_name, AssetState.key, AssetState.updated_at)
        .where(AssetState.written_by_dag_id == dag_id, AssetState.written_by_run_id == run_id,
               AssetState.written_by_task_id == task_id, AssetState.written_by_map_index == map_index,
               *name_patterns.where(visible, AssetState.asset_name))
        .order_by(AssetState.asset_name, AssetState.key).limit(COUNT_CAP)
    ).all()
