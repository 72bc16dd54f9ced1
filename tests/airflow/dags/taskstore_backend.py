"""A DAG whose task instances Airflow's execution API serves in tests/airflow/execution_api.py
(nothing here runs: the script drives the API as a worker would)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

with DAG("taskstore_backend", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def submit():
        return None

    @task
    def copy(part: int):
        return part

    submit() >> copy.expand(part=[10, 20])
