"""Shared by the Airflow-side scripts of tests/test_airflow_end_to_end.py. Each script runs
in a process of its own: Airflow reads its configuration once, at import, so the test sets
AIRFLOW_HOME and the AIRFLOW__* variables in that process's environment before anything
imports airflow. A script prints one JSON line of results last; everything else goes to stderr.

Not a test module, and not an ``airflow`` package (no __init__.py): run as a script."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime


def sync_dags() -> None:
    """Parse the DAGs folder and write the DAGs to Airflow's metadata database, as dag.test()
    and the DAG processor do."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        if bag.import_errors:
            raise RuntimeError(f"DAG import errors: {bag.import_errors}")
        sync_bag_to_db(bag, bundle.name, bundle.version)


def create_dag_run(dag_id: str, run_id: str, logical_date: datetime) -> dict[str, str]:
    """A manual DAG run with its task instances, in Airflow's metadata database:
    {"task_id[map_index]": task instance id}."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import get_or_create_dagrun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        run = get_or_create_dagrun(
            dag=dag, run_id=run_id, logical_date=logical_date, data_interval=(logical_date, logical_date),
            run_after=logical_date, conf=None, triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="taskstore-tests", start_date=datetime.now(UTC), session=session,
        )
        return {f"{ti.task_id}[{ti.map_index}]": str(ti.id) for ti in run.get_task_instances(session=session)}


def emit(results: dict) -> None:
    sys.stdout.flush()
    print(json.dumps(results, default=str), flush=True)
