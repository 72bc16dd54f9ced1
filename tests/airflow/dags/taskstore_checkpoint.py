"""A task that checkpoints through Task Store's in-task accessor, crashes on its first try,
and resumes from the checkpoint on its retry (tests/airflow/dag_retry.py runs it with dag.test()).

It also writes one key through Airflow 3.3's own ``context["task_state_store"]``: with
``[state_store] backend = webapp.integrations.airflow.TaskStoreBackend`` that lands in the
same task instance of Task Store."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from webapp.integrations.accessor import NEVER_EXPIRE, TaskStateStore

PARTS = 5


with DAG("taskstore_checkpoint", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task(retries=1, retry_delay=timedelta(seconds=0))
    def copy_parts(**context):
        store = TaskStateStore.from_context(context)
        try_number = context["ti"].try_number
        store.set("tries", [*store.get("tries", default=[]), try_number], retention=NEVER_EXPIRE)
        done = store.get("done", default=0)
        resumed_from = done
        for part in range(done, PARTS):
            store.set("done", part + 1, retention=timedelta(days=2))
            if try_number == 1 and part == 2:
                raise RuntimeError("crashed after part 3 (a checkpoint of 3 is stored)")
        store.set("result", {"resumed_from": resumed_from, "parts": PARTS})
        context["task_state_store"].set("native", {"via": "Airflow's own task_state_store"})
        store.close()

    @task
    def report():
        return "done"

    copy_parts() >> report()
