"""``dag.test()`` of the DAG in dags/taskstore_checkpoint.py: its task checkpoints through
Task Store's in-task accessor, fails on its first try and resumes on the second (dag.test()
honours ``retries``: an up_for_retry task instance is scheduled again once its retry delay
has passed). The listener plugin comes from the package's ``airflow.plugins`` entry point.
Run by tests/test_airflow_end_to_end.py with AIRFLOW_HOME and the AIRFLOW__* variables set;
prints one JSON line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from common import emit

DAG_ID = "taskstore_checkpoint"


def state_name(state) -> str | None:
    state = getattr(state, "value", state)
    return None if state is None else str(state)


def main() -> None:
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.listeners.listener import get_listener_manager
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow import plugins_manager
    from webapp.integrations import airflow_listener

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    run = dag.test(logical_date=datetime(2026, 12, 2, tzinfo=UTC))

    reporter = airflow_listener.get_reporter()
    flushed = reporter.flush(timeout=30) if reporter is not None else None
    run_id = run.run_id
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.run_id == run_id))
        tis = {ti.task_id: {"state": state_name(ti.state), "try_number": ti.try_number}
               for ti in run.get_task_instances(session=session)}
        emit({
            "dag_id": DAG_ID,
            "run_id": run.run_id,
            "run_state": state_name(run.state),
            "tis": tis,
            "plugins": [info["name"] for info in plugins_manager.get_plugin_info()],
            "listener_registered": get_listener_manager().pm.is_registered(airflow_listener),
            "reports": {"flushed": flushed, "sent": getattr(reporter, "sent", None),
                        "dropped": getattr(reporter, "dropped", None)},
        })


if __name__ == "__main__":
    sys.exit(main())
