"""Demo data that looks like a real deployment: several DAGs, runs in every state, mapped
tasks, retries, and keys holding job ids, checkpoints and progress, with expiries that are
soon, past (not yet collected) and never."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from . import runs, store
from .extensions import db
from .models import DagRun, utcnow


@dataclass
class Loaded:
    runs: int = 0
    task_instances: int = 0
    keys: int = 0


# dag_id -> tasks (task_id, number of map indexes or None)
DAGS = {
    "spark_daily_aggregation": [("extract", None), ("submit_spark_job", None), ("publish", None)],
    "s3_partition_backfill": [("list_partitions", None), ("copy_partition", 6), ("validate", None)],
    "ml_training_pipeline": [("prepare_features", None), ("train_model", None), ("evaluate", 3)],
    "dbt_nightly": [("dbt_run", None), ("dbt_test", None)],
}
# The final state of each task in the runs of a DAG, newest run first.
RUN_OUTCOMES = [
    "running",   # today's run: work in progress
    "retrying",  # a task failed once and is up for retry
    "failed",
    "success",
    "success",
]


def _keys_for(task_id: str, map_index: int, rng: random.Random) -> dict[str, object]:
    if "spark" in task_id or task_id.startswith("dbt"):
        return {
            "spark/job_id": f"application_{rng.randrange(10**12, 10**13)}_{rng.randrange(1000, 9999):04d}",
            "spark/submitted_at": (utcnow() - timedelta(minutes=rng.randrange(5, 90))).isoformat(),
        }
    if task_id == "copy_partition":
        done = rng.randrange(0, 5000)
        return {
            "checkpoint": {"partition": f"dt=2026-11-{map_index + 1:02d}", "last_object": f"part-{done:05d}.parquet"},
            "progress": {"copied": done, "total": 5000, "bytes": done * 1_048_576},
        }
    if task_id == "train_model":
        epoch = rng.randrange(1, 40)
        return {
            "sagemaker/training_job": f"train-{rng.randrange(10**6):06d}",
            "checkpoint/epoch": epoch,
            "checkpoint/uri": f"s3://models/ckpt/epoch-{epoch:03d}.pt",
            "metrics": {"loss": round(rng.uniform(0.05, 0.9), 4), "accuracy": round(rng.uniform(0.7, 0.99), 4)},
        }
    return {"cursor": rng.randrange(10**9), "external_id": f"ext-{rng.randrange(10**8):08d}"}


def _expiry(index: int, now):
    """Mix of the realistic cases: default retention, soon, already past, never."""
    return [now + timedelta(days=30), now + timedelta(hours=2), now - timedelta(minutes=10), None][index % 4]


def load(seed: int = 7, on_run: Callable[[int], None] = lambda count: None) -> Loaded:
    """Add the demo DAGs' runs that are not there yet; the caller commits (``committed``).
    ``on_run(1)`` after each run, for progress."""
    rng = random.Random(seed)
    loaded = Loaded()
    now = utcnow()
    for dag_id, tasks in DAGS.items():
        # Oldest first, so creation order matches logical dates.
        for age, outcome in reversed(list(enumerate(RUN_OUTCOMES))):
            logical_date = (now - timedelta(days=age)).replace(hour=0, minute=0, second=0, microsecond=0)
            run_id = f"scheduled__{logical_date.isoformat()}"
            if db.session.execute(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first():
                continue
            specs = [runs.TaskSpec(task_id, list(range(count)) if count else None) for task_id, count in tasks]
            _run, instances = runs.create_dag_run(dag_id, run_id, specs, logical_date)
            loaded.runs += 1
            on_run(1)
            loaded.task_instances += len(instances)
            for position, ti in enumerate(instances):
                last_task = position == len(instances) - 1
                _advance(ti, outcome, last_task)
                if ti.state is None:
                    continue
                db.session.flush()  # the store writes over the TI row, so it must be in the database
                for number, (key, value) in enumerate(_keys_for(ti.task_id, ti.map_index, rng).items()):
                    store.write(store.TASK_INSTANCE_BY_ID, key, store.encode_value(value),
                                _expiry(number + position, now), now, ti_id=ti.id)
                    loaded.keys += 1
    return loaded


def _advance(ti, outcome: str, last_task: bool) -> None:
    """Walk a TI through the states a scheduler would, retries included."""
    runs.set_state(ti, "queued", clear_on_success=False)
    runs.set_state(ti, "running", clear_on_success=False)
    if outcome == "success" or not last_task:
        runs.set_state(ti, "success", clear_on_success=False)
    elif outcome == "running":
        pass
    elif outcome == "retrying":
        runs.set_state(ti, "up_for_retry", clear_on_success=False)
    elif outcome == "failed":
        runs.set_state(ti, "up_for_retry", clear_on_success=False)
        runs.set_state(ti, "running", clear_on_success=False)
        runs.set_state(ti, "failed", clear_on_success=False)
