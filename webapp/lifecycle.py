"""A task instance's tries and a run's life: each try its own id (a stale try's token is
refused), "clear starts over", mapped indexes whose keys follow their input, and purging
runs by age. Like ``runs``, these functions leave the commit to the caller.

Tries. A task instance keeps its keys for its whole life, under its identity (dag, run, task,
map index), so a retry resumes. Its *id* is the try's: entering ``running`` for a new try
archives the try that ran (``task_instance_history``) and gives the task instance a new,
time-ordered id (a UUID version 7, as Airflow's). The earlier try's token then names a task
instance that no longer exists: every worker call with it is a 404 and writes nothing, the
way Airflow refuses a zombie.

Clear. Clearing task instances resets them (state none, ready for a new try), archives and
fences off the try they were in, and discards their keys in the same transaction, unless
``keep_task_state``: retries resume, clearing starts over.

Mapped identity. A scheduler may send a ``map_key`` per map index: a stable fingerprint of the
item that index maps over. Keys carry the map key they were written under and are handed only
to a task instance with the same one. When a mapped task is expanded again over a changed
list, keys move to the index that now holds their item; those whose item is gone (or whose new
index already has the key) are set aside: kept, shown as "from a different input", not handed
to the worker, until an editor deletes or moves them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update

from . import runs, store
from .errors import NotFound
from .extensions import db
from .models import DagRun, KeyChange, TaskInstance, TaskInstanceHistory, TaskState, utcnow
from .transactions import committed

# --- tries --------------------------------------------------------------------------------------


def tries(ti: TaskInstance) -> list:
    """Every try of a task instance, oldest first: the archived ones and the current one
    (try_number, id, state, start_date, end_date)."""
    archived = db.session.execute(
        select(TaskInstanceHistory.try_number, TaskInstanceHistory.id, TaskInstanceHistory.state,
               TaskInstanceHistory.start_date, TaskInstanceHistory.end_date)
        .where(TaskInstanceHistory.dag_run_id == ti.dag_run_id, TaskInstanceHistory.task_id == ti.task_id,
               TaskInstanceHistory.map_index == ti.map_index)
        .order_by(TaskInstanceHistory.try_number, TaskInstanceHistory.start_date)
    ).all()
    current = [TryRow(ti.try_number, ti.id, ti.state, ti.start_date, ti.end_date)] if ti.try_number else []
    return [TryRow(*row) for row in archived] + current


@dataclass(frozen=True)
class TryRow:
    try_number: int
    id: uuid.UUID
    state: str | None
    start_date: datetime | None
    end_date: datetime | None


# --- clear --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleared:
    task_instances: list[TaskInstance]
    keys_discarded: int


def clear(dag_id: str, run_id: str, *, task_ids: list[str] | None = None, map_indexes: list[int] | None = None,
          keep_task_state: bool = False, actor: str) -> Cleared:
    """Reset the selected task instances of a run (all of them by default): state none, ready
    for a new try, their try archived and its token refused; their keys discarded (and
    recorded in the history) unless ``keep_task_state``."""
    run = runs.get_dag_run(dag_id, run_id)
    conditions = [TaskInstance.dag_run_id == run.id]
    if task_ids is not None:
        known = set(db.session.execute(
            select(TaskInstance.task_id).where(TaskInstance.dag_run_id == run.id,
                                               TaskInstance.task_id.in_(task_ids))).scalars())
        missing = [task_id for task_id in task_ids if task_id not in known]
        if missing:
            raise NotFound(f"Task {missing[0]!r} of run {run_id!r} of DAG {dag_id!r} not found", field="task_ids")
        conditions.append(TaskInstance.task_id.in_(task_ids))
    if map_indexes is not None:
        conditions.append(TaskInstance.map_index.in_(map_indexes))
    instances = list(db.session.execute(
        select(TaskInstance).where(*conditions).order_by(TaskInstance.task_id, TaskInstance.map_index)).scalars())
    if map_indexes is not None and not instances:
        raise NotFound(f"No task instance of run {run_id!r} has map index {map_indexes[0]}", field="map_indexes")
    discarded = 0
    for ti in instances:
        if not keep_task_state:
            discarded += store.clear_entries(store.scope_of(ti).whole_position(), actor=actor)
        runs.end_try(ti)
        ti.state, ti.start_date, ti.end_date = None, None, None
    db.session.flush()
    runs.update_run_state(run.id, utcnow())
    return Cleared(instances, discarded)


# --- mapped identity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expanded:
    task_instances: list[TaskInstance]
    keys_moved: int
    keys_set_aside: int


def expand(dag_id: str, run_id: str, task_id: str, map_indexes: list[int], map_keys: list[str] | None) -> Expanded:
    """(Re-)expand a mapped task over its current list: a task instance per map index (new
    ones created, dropped ones ``removed``), each with its map key; keys follow their item."""
    run = runs.get_dag_run(dag_id, run_id)
    runs.validate_map_indexes(map_indexes, task_id)
    runs.validate_map_keys(map_keys, map_indexes, task_id)
    existing = {ti.map_index: ti for ti in db.session.execute(
        select(TaskInstance).where(TaskInstance.dag_run_id == run.id, TaskInstance.task_id == task_id)).scalars()}
    if not existing:
        raise NotFound(f"Task {task_id!r} of run {run_id!r} of DAG {dag_id!r} not found", field="task_id")
    wanted = dict(zip(map_indexes, map_keys or [None] * len(map_indexes), strict=True))
    instances = []
    for map_index, map_key in wanted.items():
        ti = existing.get(map_index)
        if ti is None:
            ti = TaskInstance(dag_run_id=run.id, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index,
                              state=None, try_number=0)
            db.session.add(ti)
        ti.map_key = map_key
        if ti.state == "removed":
            ti.state = None
        instances.append(ti)
    for map_index, ti in existing.items():
        if map_index not in wanted:
            ti.state = "removed"
    db.session.flush()
    moved, set_aside = _rehome_keys(run.id, task_id, wanted)
    runs.update_run_state(run.id, utcnow())
    return Expanded(instances, moved, set_aside)


def _rehome_keys(dag_run_id: int, task_id: str, wanted: dict[int, str | None]) -> tuple[int, int]:
    """Move each key written under a map key to the index that now holds that key's item.

    A key whose item is gone (or that was written without a map key) stays where it is, set
    aside; if its position and name are needed by a key moving in (the rightful one: the item
    that index now maps over), it is parked off the positions (a negative map_index, its own
    remembered in ``parked_from``) and still listed on its index's page. Moves go through
    unused negative indexes so keys can trade places under the unique (position, key) rule."""
    home = {map_key: map_index for map_index, map_key in wanted.items() if map_key is not None}
    rows = db.session.execute(
        select(TaskState.id, TaskState.map_index, TaskState.key, TaskState.map_key)
        .where(TaskState.dag_run_id == dag_run_id, TaskState.task_id == task_id, TaskState.map_index >= 0)
    ).all()
    moves = {row.id: home[row.map_key] for row in rows
             if row.map_key in home and home[row.map_key] != row.map_index}
    rightful = {(home[row.map_key], row.key) for row in rows if row.map_key in home}
    displaced = [row for row in rows if row.map_key not in home and (row.map_index, row.key) in rightful]
    for row in displaced:
        db.session.execute(update(TaskState).where(TaskState.id == row.id)
                           .values(map_index=_off_positions(row.id), parked_from=row.map_index))
    for row_id in moves:  # out of the way first
        db.session.execute(update(TaskState).where(TaskState.id == row_id).values(map_index=_off_positions(row_id)))
    for row_id, target in moves.items():
        db.session.execute(update(TaskState).where(TaskState.id == row_id).values(map_index=target))
    # Set aside: parked, or left at a position whose item is not theirs (NULL matching NULL).
    set_aside = sum(1 for row in rows if row.id not in moves and row.map_key != wanted.get(row.map_index))
    return len(moves), set_aside


def _off_positions(row_id: int) -> int:
    """A map index no task instance has (they are -1 and up), unique per key row."""
    return -2 - row_id


# --- purge by age -------------------------------------------------------------------------------


def _quiet_since(cutoff: datetime):
    """Runs with no activity since ``cutoff``: created, started and ended before it, and no
    task instance or key of theirs changed since."""
    recent_ti = select(TaskInstance.id).where(TaskInstance.dag_run_id == DagRun.id, TaskInstance.updated_at >= cutoff)
    recent_key = select(TaskState.id).where(TaskState.dag_run_id == DagRun.id, TaskState.updated_at >= cutoff)
    return (
        DagRun.created_at < cutoff,
        or_(DagRun.start_date.is_(None), DagRun.start_date < cutoff),
        or_(DagRun.end_date.is_(None), DagRun.end_date < cutoff),
        ~recent_ti.exists(), ~recent_key.exists(),
    )


def runs_to_purge(cutoff: datetime) -> Iterator:
    """What ``purge_runs`` would delete: dag_id, run_id, state, created_at; streamed."""
    yield from db.session.execute(
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.created_at).where(*_quiet_since(cutoff))
        .order_by(DagRun.id).execution_options(yield_per=1000))


def count_runs_to_purge(cutoff: datetime) -> int:
    return db.session.execute(select(func.count()).select_from(DagRun).where(*_quiet_since(cutoff))).scalar_one()


def purge_runs(cutoff: datetime, *, batch_size: int) -> Iterator[int]:
    """Delete runs with no activity since ``cutoff``, with their task instances, tries, keys
    and history, a batch of runs per short transaction; yields each batch's run count."""
    after_id = 0  # each batch starts past the last: the deleted rows' index entries are not walked again
    while True:
        batch = db.session.execute(
            select(DagRun.id, DagRun.dag_id, DagRun.run_id).where(DagRun.id > after_id, *_quiet_since(cutoff))
            .order_by(DagRun.id).limit(batch_size)).all()
        if not batch:
            return
        after_id = batch[-1].id

        def remove(batch=batch) -> int:
            for row in batch:
                db.session.execute(delete(KeyChange).where(KeyChange.dag_id == row.dag_id,
                                                           KeyChange.run_id == row.run_id))
            # Task instances, tries, keys and declared assets go with their run (ON DELETE CASCADE).
            return db.session.execute(delete(DagRun).where(DagRun.id.in_([row.id for row in batch]))).rowcount

        yield committed(remove)
        if len(batch) < batch_size:
            return
