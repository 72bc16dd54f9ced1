"""Real Airflow 3.3.2 using Task Store, each in a process of its own with its own AIRFLOW_HOME
(a SQLite metadata database migrated by ``airflow db migrate``), against the live server:

- Airflow's execution API with ``[state_store] backend = webapp.integrations.airflow.TaskStoreBackend``,
  driven by Airflow's own Task SDK client with tokens from Airflow's own JWT generator: the keys
  and the asset's keys are found through this service's admin API and UI under the same DAG,
  run, task and map index (tests/airflow/execution_api.py).
- A DAG run by ``dag.test()`` whose task checkpoints through the in-task accessor, crashes on
  its first try and resumes on its retry, with the listener plugin installed from the
  package's entry point: the service shows the states Airflow reported, try 2, and the keys
  (tests/airflow/dag_retry.py).

Airflow reads its configuration once, at import: hence the processes. These run in every pass
of the suite (their service side is the test database's); the Airflow side is the same each time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from support import log_in, table_rows, ti_page_url

pytest.importorskip("airflow.api_fastapi.execution_api.app", reason="apache-airflow-core 3.3 is not installed")
pytestmark = pytest.mark.slow  # Airflow processes

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "airflow"
ROOT = HERE.parent
BACKEND = "webapp.integrations.airflow.TaskStoreBackend"


def airflow_env(home: Path, **variables: str) -> dict[str, str]:
    """The environment of an Airflow process: nothing of the developer's Airflow or Task Store."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AIRFLOW_", "AIRFLOW__", "TASKSTORE_", "_AIRFLOW"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "taskstore-tests-" + "x" * 32,
        "PYTHONPATH": str(ROOT),
    })
    env.update(variables)
    return env


def run_airflow(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], env=env, cwd=env["AIRFLOW_HOME"], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result


def last_json_line(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def migrated_airflow_db(tmp_path_factory) -> Path:
    """One ``airflow db migrate`` per test session; each test copies the database."""
    home = tmp_path_factory.mktemp("airflow-template")
    (home / "dags").mkdir()
    run_airflow(["-m", "airflow", "db", "migrate"], airflow_env(home))
    return home / "airflow.db"


@pytest.fixture
def airflow_home(tmp_path, migrated_airflow_db) -> Path:
    home = tmp_path / "airflow-home"
    (home / "plugins").mkdir(parents=True)
    shutil.copy(migrated_airflow_db, home / "airflow.db")
    shutil.copytree(SCRIPTS / "dags", home / "dags")
    return home


def state_store(admin_get, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, dict]:
    from urllib.parse import quote

    listed = admin_get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/state-store",
                   map_index=map_index)
    return {entry["key"]: entry for entry in listed["task_state_store"]}


def test_airflows_execution_api_keeps_task_and_asset_state_here(live_server, service_key, airflow_home, admin_get,
                                                                 client, make_user):
    env = airflow_env(airflow_home, AIRFLOW__STATE_STORE__BACKEND=BACKEND,
                      AIRFLOW__TASKSTORE__URL=live_server, AIRFLOW__TASKSTORE__API_KEY=service_key,
                      AIRFLOW__TASKSTORE__RETRY_WAIT="0.05")
    seen = last_json_line(run_airflow([str(SCRIPTS / "execution_api.py")], env))

    # What Airflow's own client read back through Airflow's execution API ...
    assert seen["backend_is_ours"], seen["backend"]
    assert seen["submit"] == {"spark/job_id": {"app": "application_42", "attempt": [1, 2.5]}, "forever": "kept",
                              "scratch": "ErrorResponse"}
    assert seen["copy0_after_clear"] == "ErrorResponse"
    assert seen["asset_values"] == {"watermark": "2026-12-01", "offsets": {"p0": 17, "p1": 4},
                                    "gone": "ErrorResponse"}
    # ... never touched Airflow's own tables:
    assert seen["airflow_rows"] == {"task_state_store": 0, "asset_state_store": 0}

    # This service has it under the same DAG, run, task and map index.
    dag_id, run_id = seen["dag_id"], seen["run_id"]
    submit = state_store(admin_get, dag_id, run_id, "submit")
    assert {key: entry["value"] for key, entry in submit.items()} == {
        "forever": "kept", "spark/job_id": {"app": "application_42", "attempt": [1, 2.5]}}
    assert datetime.fromisoformat(submit["spark/job_id"]["expires_at"]) == datetime.fromisoformat(seen["expires_at"])
    assert submit["forever"]["expires_at"] is None
    assert state_store(admin_get, dag_id, run_id, "copy", 0) == {}  # cleared: its own map index only
    copy1 = state_store(admin_get, dag_id, run_id, "copy", 1)
    assert {key: entry["value"] for key, entry in copy1.items()} == {
        "progress": {"map_index": 1, "rows": 200}, "to-clear": True}

    # The asset, registered here with Airflow's name and URI (resolved from Airflow's asset id).
    (asset,) = [a for a in admin_get("/api/v2/assets")["assets"] if a["name"] == seen["asset"]["name"]]
    assert asset["uri"] == seen["asset"]["uri"] and asset["key_count"] == 2
    keys = admin_get(f"/api/v2/assets/{asset['id']}/state-store")["asset_state_store"]
    assert {entry["key"]: entry["value"] for entry in keys} == {"offsets": {"p0": 17, "p1": 4},
                                                                 "watermark": "2026-12-01"}

    # And the UI's task instance page shows them.
    log_in(client, make_user("viewer-e2e", "viewer"))
    page = client.get(ti_page_url(dag_id, run_id, "submit"))
    assert page.status_code == 200
    cells = [" ".join(row) for row in table_rows(page.text)]
    assert any("spark/job_id" in row and "application_42" in row for row in cells), cells
    mapped = client.get(ti_page_url(dag_id, run_id, "copy", map_index=1))
    assert "progress" in mapped.text and "200" in mapped.text


def test_a_dag_retrying_through_the_accessor_resumes_and_its_states_are_reported(
        live_server, service_key, airflow_home, admin_get, client, make_user):
    env = airflow_env(airflow_home, AIRFLOW__STATE_STORE__BACKEND=BACKEND,
                      AIRFLOW__TASKSTORE__URL=live_server, AIRFLOW__TASKSTORE__API_KEY=service_key,
                      AIRFLOW__TASKSTORE__RETRY_WAIT="0.05")
    seen = last_json_line(run_airflow([str(SCRIPTS / "dag_retry.py")], env))

    # Airflow's own view: the plugin came from the entry point, the task failed once and then succeeded.
    assert "taskstore" in seen["plugins"] and seen["listener_registered"]
    assert seen["reports"]["flushed"] and seen["reports"]["dropped"] == 0
    assert seen["run_state"] == "success"
    assert seen["tis"]["copy_parts"] == {"state": "success", "try_number": 2}
    dag_id, run_id = seen["dag_id"], seen["run_id"]

    # The keys the two tries wrote through the accessor: the retry resumed from the checkpoint.
    keys = state_store(admin_get, dag_id, run_id, "copy_parts")
    assert {key: entry["value"] for key, entry in keys.items()} == {
        "tries": [1, 2], "done": 5, "result": {"resumed_from": 3, "parts": 5},
        "native": {"via": "Airflow's own task_state_store"}}
    assert keys["tries"]["expires_at"] is None and keys["done"]["expires_at"] is not None

    # The states the listener reported: the run, each task instance, and the tries.
    ti = admin_get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/copy_parts")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    tries = admin_get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/copy_parts/tries")
    assert [(t["try_number"], t["state"]) for t in tries["tries"]] == [(1, "up_for_retry"), (2, "success")]
    report = admin_get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/report")
    assert (report["state"], report["try_number"]) == ("success", 1)
    assert admin_get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"] == "success"

    log_in(client, make_user("viewer-run", "viewer"))
    page = client.get(f"/dags/{dag_id}/runs/{run_id}")
    assert page.status_code == 200
    rows = {row[0]: row for row in table_rows(page.text) if row and row[0] in ("copy_parts", "report")}
    assert "success" in rows["copy_parts"] and "2" in rows["copy_parts"], rows


@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                    reason="does not depend on the test database: runs in the SQLite pass")
def test_the_plugin_is_found_through_the_entry_point():
    from importlib.metadata import entry_points

    (found,) = [point for point in entry_points(group="airflow.plugins") if point.name == "taskstore"]
    assert found.value == "webapp.integrations.airflow_plugin:TaskStorePlugin"
    plugin = found.load()
    from webapp.integrations import airflow_listener

    assert plugin.name == "taskstore" and plugin.listeners == [airflow_listener]
