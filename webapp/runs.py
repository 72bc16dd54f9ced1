"""DAG runs and task instances: creation, state changes (retries, clear_on_success),
deletion and the listings the admin API and UI show. Like ``store``, these functions leave
the commit to the caller."""

from __future__ import annotations

import itertools
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, func, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from . import assets, store
from .auth import name_patterns
from .errors import Conflict, InvalidInput, NotFound
from .extensions import db
from .models import ID_LENGTH, INT_MAX, DagRun, TaskInstance, TaskInstanceHistory, utcnow, uuid7


class TaskInstanceState(StrEnum):
    """Airflow's task instance states. A task instance not yet scheduled has none (NULL; the
    API also accepts "none")."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"
    DEFERRED = "deferred"
    RESTARTING = "restarting"
    AWAITING_INPUT = "awaiting_input"  # waiting for a person's answer (Airflow's human-in-the-loop tasks)


class DagRunState(StrEnum):
    """A run's state follows its task instances."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


TI_STATES = tuple(TaskInstanceState)
RUN_STATES = tuple(DagRunState)
FINISHED_STATES = {"success", "failed", "upstream_failed", "skipped", "removed"}
FAILED_STATES = {"failed", "upstream_failed"}
# Entering "running" from one of these starts a new try (a retry, a restart, a re-run).
NEW_TRY_FROM = {"up_for_retry", "restarting"} | FINISHED_STATES
# These end a try (they set end_date). A TI whose try has ended starts a new one when it next
# runs, even when the scheduler routes it through scheduled and queued first, as Airflow does.
TRY_ENDED_STATES = {"up_for_retry"} | FINISHED_STATES


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    map_indexes: list[int] | None = None
    inlets: tuple[str, ...] = ()  # asset names the task reads (asset_access = declared)
    outlets: tuple[str, ...] = ()  # and writes
    map_keys: tuple[str, ...] | None = None  # one per map index: its input's fingerprint


def validate_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > ID_LENGTH:
        raise InvalidInput(field, f"is {len(value)} characters long; the limit is {ID_LENGTH}")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidInput(field, "must not contain control characters")
    if "/" in value:
        # Ids are path segments in every URL of the API and the UI: one holding "/" could
        # never be addressed (or deleted) afterwards.
        raise InvalidInput(field, "must not contain '/'")
    if value.isspace():
        raise InvalidInput(field, "must contain a character other than spaces")
    return value


def validate_map_indexes(indexes: list[int] | None, task_id: str) -> None:
    if indexes is not None and (len(set(indexes)) != len(indexes) or any(i < 0 for i in indexes)):
        raise InvalidInput("map_indexes", f"of task {task_id!r} must be distinct integers >= 0")


def validate_map_keys(map_keys, map_indexes: list[int] | None, task_id: str) -> None:
    """One map key per map index, each a string of 1 to 250 characters."""
    if map_keys is None:
        return
    if map_indexes is None or len(map_keys) != len(map_indexes):
        raise InvalidInput("map_keys", f"of task {task_id!r} must give one map key per map index")
    for position, map_key in enumerate(map_keys):
        if not isinstance(map_key, str) or not map_key or len(map_key) > ID_LENGTH:
            raise InvalidInput(f"map_keys[{position}]", f"must be a string of 1 to {ID_LENGTH} characters")
    if len(set(map_keys)) != len(map_keys):
        raise InvalidInput("map_keys", f"of task {task_id!r} must be distinct: each names one item of the list "
                                       "(for equal items, add the occurrence, e.g. 'sha...#2')")


def parse_state(raw: object) -> str | None:
    if raw is None or raw == "none":
        return None
    if raw not in TI_STATES:
        raise InvalidInput("state", f"must be one of none, {', '.join(TI_STATES)}")
    return str(raw)


# --- lookups ------------------------------------------------------------------------------


def get_dag_run(dag_id: str, run_id: str) -> DagRun:
    run = db.session.execute(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).scalar_one_or_none()
    if run is None:
        raise NotFound(f"DAG run {run_id!r} of DAG {dag_id!r} not found")
    return run


def get_task_instance(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> TaskInstance:
    ti = db.session.execute(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id, TaskInstance.map_index == map_index,
        )
    ).scalar_one_or_none()
    if ti is None:
        raise NotFound(
            f"Task instance {task_id!r} (map index {map_index}) of run {run_id!r} of DAG {dag_id!r} not found"
        )
    return ti


def any_task_instance(dag_id: str, run_id: str, task_id: str) -> TaskInstance:
    """Some map index of a task: the handle for operations on all of them."""
    ti = db.session.execute(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id,
        ).order_by(TaskInstance.map_index).limit(1)
    ).scalar_one_or_none()
    if ti is None:
        raise NotFound(f"Task {task_id!r} of run {run_id!r} of DAG {dag_id!r} not found")
    return ti


def task_instance_id_not_found(ti_id: uuid.UUID) -> NotFound:
    return NotFound(f"Task instance {ti_id} not found")


def get_task_instance_by_id(ti_id: uuid.UUID) -> TaskInstance:
    ti = db.session.get(TaskInstance, ti_id)
    if ti is None:
        raise task_instance_id_not_found(ti_id)
    return ti


# --- changes ------------------------------------------------------------------------------


def create_dag_run(dag_id: str, run_id: str, tasks: list[TaskSpec],
                   logical_date: datetime | None = None) -> tuple[DagRun, list[TaskInstance]]:
    validate_name("dag_id", dag_id)
    validate_name("dag_run_id", run_id)
    seen: set[str] = set()
    for spec in tasks:
        validate_name("task_id", spec.task_id)
        if spec.task_id in seen:
            raise InvalidInput("tasks", f"task {spec.task_id!r} is listed twice")
        seen.add(spec.task_id)
        validate_map_indexes(spec.map_indexes, spec.task_id)
        validate_map_keys(spec.map_keys, spec.map_indexes, spec.task_id)
    if db.session.execute(
        select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).first():
        raise Conflict(f"DAG run {run_id!r} of DAG {dag_id!r} already exists")

    run = DagRun(dag_id=dag_id, run_id=run_id, state="queued", logical_date=logical_date)
    db.session.add(run)
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(f"DAG run {run_id!r} of DAG {dag_id!r} already exists") from None
    # Time-ordered ids, made in the order of ``tasks``: the run's page lists tasks by them.
    instances = [
        TaskInstance(id=uuid7(), dag_run_id=run.id, dag_id=dag_id, run_id=run_id, task_id=spec.task_id,
                     map_index=map_index, state=None, try_number=0, map_key=map_key)
        for spec in tasks
        for map_index, map_key in zip(spec.map_indexes if spec.map_indexes is not None else [-1],
                                      spec.map_keys or [None] * len(spec.map_indexes or [-1]), strict=True)
    ]
    db.session.add_all(instances)
    for spec in tasks:
        assets.record_declarations(run.id, spec.task_id, list(spec.inlets), list(spec.outlets))
    db.session.flush()
    return run, instances




def end_try(ti: TaskInstance) -> None:
    """Archive the try that ran, if one did (``task_instance_history``), and give the task
    instance a new id: that try's token names a task instance that no longer exists, so every
    worker call with it is a 404 and writes nothing. The keys stay with the task instance's
    identity (run, task, map index): the next try reads them."""
    if ti.start_date is None:
        return  # no try ran since the last one ended (a fresh or a cleared task instance)
    db.session.add(TaskInstanceHistory(
        id=ti.id, dag_run_id=ti.dag_run_id, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
        map_index=ti.map_index, try_number=ti.try_number, state=ti.state, start_date=ti.start_date,
        end_date=ti.end_date, map_key=ti.map_key))
    ti.id = uuid7()


def set_state(ti: TaskInstance, new_state: str | None, *, clear_on_success: bool) -> TaskInstance:
    """Move a TI to a state. A new try gets a new id and keeps the TI's keys: that is what
    retries resume from, while the earlier try is fenced off."""
    now = utcnow()
    if new_state == "running" and ti.state != "running":
        if ti.try_number == 0 or ti.state in NEW_TRY_FROM or ti.end_date is not None or ti.start_date is None:
            if ti.try_number >= INT_MAX:  # the column is 32-bit: one more would overflow in the database
                raise InvalidInput("try_number", f"cannot go past {INT_MAX}")
            end_try(ti)
            ti.try_number += 1
        ti.start_date, ti.end_date = now, None
    if new_state in TRY_ENDED_STATES:
        ti.end_date = now
    ti.state = new_state
    if new_state == "success" and clear_on_success:
        store.clear(store.scope_of(ti))  # the system's own clear: no person to record
    db.session.flush()
    update_run_state(ti.dag_run_id, now)
    return ti


def update_run_state(dag_run_id: int, now: datetime) -> None:
    run = db.session.get(DagRun, dag_run_id)
    states = db.session.execute(select(TaskInstance.state).where(TaskInstance.dag_run_id == dag_run_id)).scalars().all()
    state = run_state(states)
    if state != run.state:
        run.state = state
        if state == "running" and run.start_date is None:
            run.start_date = now
        run.end_date = now if state in ("success", "failed") else None


def run_state(ti_states: list[str | None]) -> str:
    if ti_states and all(state in FINISHED_STATES for state in ti_states):
        return "failed" if any(state in FAILED_STATES for state in ti_states) else "success"
    if any(state is not None for state in ti_states):
        return "running"
    return "queued"


def delete_dag_run(dag_id: str, run_id: str) -> None:
    """The run goes with its task instances and their keys (ON DELETE CASCADE)."""
    run = get_dag_run(dag_id, run_id)
    db.session.execute(delete(DagRun).where(DagRun.id == run.id))


@dataclass(frozen=True)
class RunContents:
    """What deleting a run takes with it. Not among it, so they stay: the history of changes to
    its keys (``key_change`` names a task instance by DAG, run, task and map index, with no
    foreign key to it) and the asset keys its tasks wrote."""

    task_instances: int
    earlier_tries: int  # tries archived in task_instance_history
    live_keys: int
    expired_keys: int  # past their expiry, not yet removed by ``taskstore clean``

    def describe(self) -> str:
        """"4 task instances (and 2 earlier tries) and 7 keys (and 1 expired key not yet removed)"."""
        tries = f" (and {_counted(self.earlier_tries, 'earlier try', 'earlier tries')})" if self.earlier_tries else ""
        expired = f" (and {_counted(self.expired_keys, 'expired key')} not yet removed)" if self.expired_keys else ""
        return f"{_counted(self.task_instances, 'task instance')}{tries} and {_counted(self.live_keys, 'key')}{expired}"


def _counted(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def run_contents(run: DagRun, now: datetime | None = None) -> RunContents:
    """Exact counts (a confirmation says what will go, not "more than"): three indexed counts
    of one run's rows."""
    task_instances = db.session.execute(
        select(func.count()).select_from(TaskInstance).where(TaskInstance.dag_run_id == run.id)).scalar_one()
    tries = db.session.execute(select(func.count()).select_from(TaskInstanceHistory)
                               .where(TaskInstanceHistory.dag_run_id == run.id)).scalar_one()
    live, expired = store.run_key_counts(run.id, now)
    return RunContents(task_instances, tries, live, expired)


def delete_dag_run_and_count(dag_id: str, run_id: str) -> RunContents:
    """``delete_dag_run``, answering what went with the run (counted in the same transaction)."""
    contents = run_contents(get_dag_run(dag_id, run_id))
    delete_dag_run(dag_id, run_id)
    return contents


# --- listings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list
    total: int


def list_dag_runs(dag_id: str, limit: int, offset: int, state: str | None = None) -> Page:
    conditions = [DagRun.dag_id == dag_id]
    if state is not None:
        if state not in RUN_STATES:
            raise InvalidInput("state", f"must be one of {', '.join(RUN_STATES)}")
        conditions.append(DagRun.state == state)
    total = db.session.execute(select(func.count()).select_from(DagRun).where(*conditions)).scalar_one()
    runs = db.session.execute(
        select(DagRun).where(*conditions).order_by(DagRun.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return Page(list(runs), total)


def list_task_instances(dag_id: str, run_id: str, limit: int, offset: int) -> Page:
    """A run's task instances with their live key counts (``TaskInstanceRow``)."""
    return task_instance_rows(get_dag_run(dag_id, run_id), limit, offset)


# --- listings for the admin UI --------------------------------------------------------------
# Each page is one query for its rows plus one GROUP BY per count, restricted to the ids on
# the page: never a query per row, so a page costs the same with 10 runs or 100,000.


@dataclass(frozen=True)
class DagSummary:
    dag_id: str
    run_count: int
    task_instances_with_keys: int
    key_count: int
    last_run_state: str | None = None  # the newest run's (the first on the DAG's runs page)
    last_activity: datetime | None = None  # see dag_summaries


@dataclass(frozen=True)
class RunRow:
    run: DagRun
    task_instance_count: int
    key_count: int


@dataclass(frozen=True)
class RunPage:
    rows: list[RunRow]
    total: int  # runs matching the filter
    state_counts: dict[str, int]  # every run of the DAG, by state
    newer_than: int | None  # keyset cursors: ?after=<newer_than> is the previous page,
    older_than: int | None  # ?before=<older_than> the next one


@dataclass(frozen=True)
class TaskInstanceRow:
    ti: TaskInstance
    key_count: int


@dataclass(frozen=True)
class TaskGroup:
    """One task's rows on a run's page: a plain task's one row, or a mapped task's map indexes."""

    task_id: str
    rows: list[TaskInstanceRow]

    @property
    def mapped(self) -> bool:
        return any(row.ti.map_index != -1 for row in self.rows)

    @property
    def key_count(self) -> int:
        return sum(row.key_count for row in self.rows)


def task_groups(rows: list[TaskInstanceRow]) -> list[TaskGroup]:
    """Consecutive rows of one task, in the order given (``task_instance_rows``' order)."""
    return [TaskGroup(task_id, list(group)) for task_id, group in itertools.groupby(rows, lambda row: row.ti.task_id)]


def neighbour_map_indexes(ti: TaskInstance) -> tuple[int | None, int | None]:
    """The map indexes before and after a mapped task instance's in its run (None at either end,
    and both None for an unmapped one)."""
    if ti.map_index == -1:
        return None, None
    same_task = (TaskInstance.dag_run_id == ti.dag_run_id, TaskInstance.task_id == ti.task_id)
    before = db.session.execute(select(func.max(TaskInstance.map_index)).where(
        *same_task, TaskInstance.map_index < ti.map_index, TaskInstance.map_index >= 0)).scalar_one()
    after = db.session.execute(select(func.min(TaskInstance.map_index)).where(
        *same_task, TaskInstance.map_index > ti.map_index)).scalar_one()
    return before, after


def dag_exists(dag_id: str, *, visible=None) -> bool:
    """Whether a DAG of this id has a run (one the patterns ``visible`` allow)."""
    allowed = name_patterns.where(visible, DagRun.dag_id)
    return db.session.execute(select(DagRun.id).where(DagRun.dag_id == dag_id, *allowed).limit(1)).first() is not None


def dag_ids_like(text: str, *, limit: int, visible=None) -> list[str]:
    """DAG ids containing ``text`` (all of them when it is empty), ignoring case, in order; at most ``limit``."""
    allowed = name_patterns.where(visible, DagRun.dag_id)
    query = select(DagRun.dag_id).distinct().where(*allowed)
    if text:
        query = query.where(DagRun.dag_id.icontains(text, autoescape=True))
    return list(db.session.execute(query.order_by(DagRun.dag_id).limit(limit)).scalars())


def dag_summaries(limit: int, offset: int, now: datetime | None = None, *, visible=None,
                  contains: str | None = None) -> Page:
    """DAGs with their runs, task instances holding live keys, and live keys (both capped), the
    newest run's state and the DAG's last activity; ``visible``: only the DAGs those patterns
    allow (``auth.name_patterns``); ``contains``: only DAG ids containing it, ignoring case.

    Three queries for any page: the total, the page and the key counts. Each reads indexes
    only, a few entries per DAG, except the run counts, which count each DAG's entries of an
    index: grouping every run row instead took 370 ms at a million runs on SQLite
    (bench/RESULTS.md). Last activity is the latest time a run of the DAG was created,
    started or finished (each the last entry of a (dag_id, time) index). The latest key write
    would say more, but finding it reads every key of the DAG (no index holds updated_at),
    which at a million keys costs more than the rest of the page; a task writing keys runs
    within its run's start and end anyway."""
    if contains and len(contains) > ID_LENGTH:  # no DAG id is longer; and SQLite's LIKE refuses huge patterns
        raise InvalidInput("q", f"is {len(contains):,} characters long; a DAG id has at most {ID_LENGTH}")
    dag_ids = _dag_ids()
    dag_id = dag_ids.c.dag_id
    conditions = [dag_id.is_not(None), *name_patterns.where(visible, dag_id)]
    if contains:
        conditions.append(dag_id.icontains(contains, autoescape=True))
    total = db.session.execute(select(func.count()).select_from(dag_ids).where(*conditions)).scalar_one()
    page = select(dag_id).where(*conditions).order_by(dag_id).limit(limit).offset(offset).subquery()
    of_dag = aliased(DagRun)

    def per_dag(value):
        return select(value).where(of_dag.dag_id == page.c.dag_id).scalar_subquery()

    per_dag_values = select(
        page.c.dag_id, per_dag(func.count()).label("run_count"), per_dag(func.max(of_dag.id)).label("newest_id"),
        per_dag(func.max(of_dag.created_at)).label("created"), per_dag(func.max(of_dag.start_date)).label("started"),
        per_dag(func.max(of_dag.end_date)).label("ended"),
    ).subquery()
    rows = db.session.execute(
        select(per_dag_values, DagRun.state.label("last_run_state"))
        .join(DagRun, DagRun.id == per_dag_values.c.newest_id).order_by(per_dag_values.c.dag_id)
    ).all()
    key_counts = store.dag_key_counts_by_dag([row.dag_id for row in rows], now)
    return Page([
        DagSummary(row.dag_id, row.run_count, *key_counts.get(row.dag_id, (0, 0)), last_run_state=row.last_run_state,
                   last_activity=max((at for at in (row.created, row.started, row.ended) if at is not None),
                                     default=None))
        for row in rows
    ], total)


def _dag_ids():
    """Every DAG id that has a run, as a recursive CTE (column ``dag_id``, a NULL last) that
    seeks the next id in the (dag_id, id) index once per DAG, instead of reading every run
    (an index skip scan, which none of the databases does for DISTINCT by itself)."""
    later = aliased(DagRun)
    walk = select(func.min(DagRun.dag_id).label("dag_id")).cte("dag_ids", recursive=True)
    return walk.union_all(
        select(select(func.min(later.dag_id)).where(later.dag_id > walk.c.dag_id).scalar_subquery())
        .where(walk.c.dag_id.is_not(None))
    )


def dag_run_page(dag_id: str, *, limit: int, state: str | None = None, before: int | None = None,
                 after: int | None = None, now: datetime | None = None) -> RunPage:
    """Runs of a DAG, newest first, paged by id (keyset: no OFFSET scan on deep pages)."""
    state_counts = dict(db.session.execute(
        select(DagRun.state, func.count()).where(DagRun.dag_id == dag_id).group_by(DagRun.state)
    ).all())
    if not state_counts:
        raise NotFound(f"DAG {dag_id!r} not found")
    conditions = [DagRun.dag_id == dag_id]
    if state is not None:
        if state not in RUN_STATES:
            raise InvalidInput("state", f"must be one of {', '.join(RUN_STATES)}")
        conditions.append(DagRun.state == state)
    if after is not None:
        fetched = db.session.execute(
            select(DagRun).where(*conditions, DagRun.id > after).order_by(DagRun.id).limit(limit + 1)
        ).scalars().all()
        page, has_newer, has_older = list(reversed(fetched[:limit])), len(fetched) > limit, True
    else:
        if before is not None:
            conditions.append(DagRun.id < before)
        fetched = db.session.execute(
            select(DagRun).where(*conditions).order_by(DagRun.id.desc()).limit(limit + 1)
        ).scalars().all()
        page, has_newer, has_older = list(fetched[:limit]), before is not None, len(fetched) > limit
    ids = [run.id for run in page]
    ti_counts = _task_instances_by_run(ids)
    key_counts = store.key_counts_by_run(ids, now)
    rows = [RunRow(run, ti_counts.get(run.id, 0), key_counts.get(run.id, 0)) for run in page]
    total = state_counts.get(state, 0) if state else sum(state_counts.values())
    return RunPage(
        rows, total, state_counts,
        newer_than=ids[0] if ids and has_newer else None,
        older_than=ids[-1] if ids and has_older else None,
    )


def _task_instances_by_run(run_ids: list[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    return dict(db.session.execute(
        select(TaskInstance.dag_run_id, func.count()).where(TaskInstance.dag_run_id.in_(run_ids))
        .group_by(TaskInstance.dag_run_id)
    ).all())


def task_instance_rows(run: DagRun, limit: int, offset: int, now: datetime | None = None, *,
                       in_creation_order: bool = False) -> Page:
    """A run's task instances ordered by task id and map index (the admin API's order), or with
    ``in_creation_order`` tasks in the order they were created (the UI's: the order a DAG's
    author and its scheduler gave them), a mapped task's map indexes together in map index
    order; each with its live key count.

    The creation order comes from the ids: a task instance is created with a time-ordered id
    (``uuid7``, increasing within a process), and each later try gets a new one, but tries
    that ended keep theirs in task_instance_history. So a task's smallest id, among its task
    instances and their archived tries, is the one its first task instance was created with.
    (Rather than a column of its own, which would need a migration and a value for every
    existing row.) Tasks whose first task instance was created with a random id, before ids
    were time-ordered, come in an arbitrary but fixed order."""
    condition = TaskInstance.dag_run_id == run.id
    total = db.session.execute(select(func.count()).select_from(TaskInstance).where(condition)).scalar_one()
    order = (TaskInstance.task_id, TaskInstance.map_index)
    query = select(TaskInstance).where(condition)
    if in_creation_order:
        first = _first_ids_by_task(run.id)
        query = query.join(first, first.c.task_id == TaskInstance.task_id)
        order = (first.c.first_id, TaskInstance.map_index)
    instances = db.session.execute(query.order_by(*order).limit(limit).offset(offset)).scalars().all()
    key_counts = store.key_counts_by_task_instance(run.id, sorted({ti.task_id for ti in instances}), now)
    return Page([TaskInstanceRow(ti, key_counts.get((ti.task_id, ti.map_index), 0)) for ti in instances], total)


def _first_ids_by_task(dag_run_id: int):
    """A subquery: each task's smallest id (``first_id``) among its task instances and their
    archived tries."""
    ids = union_all(
        select(TaskInstance.task_id, TaskInstance.id).where(TaskInstance.dag_run_id == dag_run_id),
        select(TaskInstanceHistory.task_id, TaskInstanceHistory.id).where(TaskInstanceHistory.dag_run_id == dag_run_id),
    ).subquery()
    # The smallest id per task, by row_number: PostgreSQL has no min() for uuid.
    ranked = select(ids.c.task_id, ids.c.id, func.row_number().over(
        partition_by=ids.c.task_id, order_by=ids.c.id).label("nth")).subquery()
    return select(ranked.c.task_id, ranked.c.id.label("first_id")).where(ranked.c.nth == 1).subquery()


# --- identity-addressed (a service such as Airflow's storage backend) ------------------------------


def ensure_task_instance(dag_id: str, run_id: str, task_id: str, map_index: int) -> TaskInstance:
    """The task instance of that identity, its run and itself created when missing (a service
    reports what its own scheduler made). Racing creators meet the unique constraints: the
    loser reads what the winner made."""
    for name, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
        validate_name(name, value)
    try:
        return get_task_instance(dag_id, run_id, task_id, map_index)
    except NotFound:
        pass
    try:
        with db.session.begin_nested():
            run = db.session.execute(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).scalar_one_or_none()
            if run is None:
                run = DagRun(dag_id=dag_id, run_id=run_id, state="queued")
                db.session.add(run)
                db.session.flush()
            db.session.add(TaskInstance(id=uuid7(), dag_run_id=run.id, dag_id=dag_id, run_id=run_id,
                                        task_id=task_id, map_index=map_index, state=None, try_number=0))
            db.session.flush()
    except IntegrityError:
        pass  # created meanwhile by another request
    return get_task_instance(dag_id, run_id, task_id, map_index)


# How many tries that ran unseen, before a reported one, get a row of their own.
UNSEEN_TRIES_RECORDED = 20


def report_state(ti: TaskInstance, state: str | None, try_number: int | None, *,
                 clear_on_success: bool) -> TaskInstance:
    """A state the service's own scheduler reached, with its try number: tries we did not see
    (the reporter started late, or missed an event) are counted in, so the try that runs is the
    reported one (a new id, as every new try), whatever the state reported: a task that ran
    unseen and finished on try 2 shows try 2."""
    if try_number is not None:
        if state == "running" and ti.try_number >= try_number and ti.state == "running":
            return ti  # reported twice
        if ti.try_number < try_number - 1:
            end_try(ti)  # the last try seen, if one ran
            ti.state, ti.start_date = None, None
            # A row each for the latest unseen tries only: a bogus try number cannot make millions.
            ti.try_number = max(ti.try_number, try_number - 1 - UNSEEN_TRIES_RECORDED)
        while ti.try_number < try_number - 1:
            end_try(ti)
            ti.try_number += 1
            ti.start_date, ti.end_date = utcnow(), utcnow()
        if state != "running" and ti.try_number < try_number:
            end_try(ti)  # the reported try ran unseen: it started now and ends in this state
            ti.try_number, ti.start_date, ti.end_date = try_number, utcnow(), None
    return set_state(ti, state, clear_on_success=clear_on_success)
