"""The ``taskstore`` commands (run through Flask's CLI runner): schema migration, admin API
keys, worker tokens, garbage collection of expired keys and demo data."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, inspect, select

from servers import server_env
from support import key_url, put_key
from webapp.extensions import db
from webapp.models import ApiKey, DagRun, TaskInstance, TaskState

PAST = "2000-01-01T00:00:00+00:00"


def last_line(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def assert_clean_failure(result, *fragments: str):
    """A non-zero exit with a message, and no Python traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    text = result.output
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text


def stored_keys(app) -> list[tuple]:
    with app.app_context():
        return sorted(tuple(row) for row in db.session.execute(
            select(TaskState.run_id, TaskState.task_id, TaskState.map_index, TaskState.key)
        ).all())


# --- db upgrade ---------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_on_an_empty_database(make_app, tmp_path):
    fresh = make_app(database_url="sqlite:///" + str(tmp_path / "fresh.db"))
    runner = fresh.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with fresh.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"dag_run", "task_instance", "task_state", "api_key"} <= tables

    # Running it again is harmless, and the migrated database works.
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    created = runner.invoke(args=["api-keys", "create", "first"])
    assert created.exit_code == 0, created.output
    response = fresh.test_client().get("/api/v2/dags", headers={"Authorization": f"Bearer {last_line(created)}"})
    assert response.status_code == 200
    assert response.json == {"dags": [], "total_entries": 0}


def test_db_upgrade_on_an_up_to_date_database_changes_nothing(runner, make_run, stored_rows, client, worker_auth,
                                                               worker_put):
    ti = make_run()["task"]
    worker_put(ti, "job", "j1")
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert [row.key for row in stored_rows()] == ["job"]
    response = client.get(key_url(ti, "job"), headers=worker_auth(ti))
    assert response.status_code == 200 and response.json == {"value": "j1"}


# --- api-keys create ----------------------------------------------------------------------


def test_api_key_is_printed_alone_on_the_last_line_and_works(app, client, runner):
    result = runner.invoke(args=["api-keys", "create", "ci-bot"])
    assert result.exit_code == 0, result.output
    key = last_line(result)
    assert " " not in key and key
    headers = {"Authorization": f"Bearer {key}"}

    assert client.get("/api/v2/dags", headers=headers).status_code == 200
    created = client.post("/api/v2/dags/dag/dagRuns", headers=headers, json={"dag_run_id": "r1"})
    assert created.status_code == 201  # admin is the default role

    with app.app_context():
        records = db.session.execute(select(ApiKey)).scalars().all()
    assert [(record.name, record.role) for record in records] == [("ci-bot", "admin")]
    assert key not in {records[0].key_hash, records[0].prefix}  # only a digest is stored


def test_viewer_api_key_can_read_but_not_write(client, runner):
    result = runner.invoke(args=["api-keys", "create", "dashboard", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {last_line(result)}"}
    assert client.get("/api/v2/dags", headers=headers).status_code == 200
    refused = client.post("/api/v2/dags/dag/dagRuns", headers=headers, json={"dag_run_id": "r1"})
    assert refused.status_code == 403


def test_each_api_key_is_different(runner):
    first = last_line(runner.invoke(args=["api-keys", "create", "one"]))
    second = last_line(runner.invoke(args=["api-keys", "create", "two"]))
    assert first != second


def test_a_second_active_key_of_the_same_name_is_refused_until_the_first_is_revoked(runner):
    assert runner.invoke(args=["api-keys", "create", "ci"]).exit_code == 0
    refused = runner.invoke(args=["api-keys", "create", "ci"])
    assert refused.exit_code == 1 and "An API key named 'ci' exists" in refused.output
    assert runner.invoke(args=["api-keys", "revoke", "ci"]).exit_code == 0
    assert runner.invoke(args=["api-keys", "create", "ci"]).exit_code == 0


def test_unknown_role_is_refused_and_creates_no_key(app, runner):
    result = runner.invoke(args=["api-keys", "create", "bot", "--role", "root"])
    assert result.exit_code != 0
    assert "root" in result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ApiKey)).scalar_one() == 0


def test_api_key_needs_a_name(runner):
    result = runner.invoke(args=["api-keys", "create"])
    assert result.exit_code != 0
    assert "NAME" in result.output


# --- token --------------------------------------------------------------------------------


def test_token_is_printed_alone_on_the_last_line_and_works_for_that_task_instance(client, runner, make_run):
    ids = make_run(dag_id="etl", run_id="manual_1", tasks=(("load", None), ("copy", [0, 1])))
    result = runner.invoke(args=["token", ids[("copy", 1)]])
    assert result.exit_code == 0, result.output
    assert "etl/manual_1/copy[1]" in result.stdout
    headers = {"Authorization": f"Bearer {last_line(result)}"}

    put_key(client, headers, ids[("copy", 1)], "checkpoint", {"part": 7})  # with the printed token
    response = client.get(key_url(ids[("copy", 1)], "checkpoint"), headers=headers)
    assert response.status_code == 200 and response.json == {"value": {"part": 7}}
    other = client.get(key_url(ids[("copy", 0)], "checkpoint"), headers=headers)
    assert other.status_code == 403


def test_a_cli_token_is_not_an_admin_api_key(client, runner, ti_id):
    token = last_line(runner.invoke(args=["token", ti_id]))
    response = client.get("/api/v2/dags", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("unknown", [str(uuid.UUID(int=5)), "not-a-uuid"])
def test_token_for_an_unknown_task_instance_fails_clearly(runner, ti_id, unknown):
    result = runner.invoke(args=["token", unknown])
    assert_clean_failure(result, f"Task instance {unknown} not found")
    assert result.stdout == ""


# --- clean --------------------------------------------------------------------------------


@pytest.fixture
def mixed_keys(make_run, worker_put):
    """Five expired keys spread over task instances and runs, two live ones and two that
    never expire."""
    first = make_run(run_id="run_1", tasks=(("task", None), ("mapped", [0, 1])))
    second = make_run(run_id="run_2", tasks=(("task", None),))
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    writes = [
        (first["task"], "expired/a", PAST), (first["task"], "expired/b", "2020-06-01T00:00:00Z"),
        (first[("mapped", 0)], "expired/c", PAST), (first[("mapped", 1)], "expired/d", "2024-01-01T00:00:00Z"),
        (second["task"], "expired/e", PAST),
        (first["task"], "live/soon", soon), (second["task"], "live/later", later),
        (first[("mapped", 0)], "never/a", None), (second["task"], "never/b", None),
    ]
    for ti, key, expires_at in writes:
        worker_put(ti, key, {"key": key}, expires_at)
    return {"first": first, "second": second}


KEPT = [
    ("run_1", "mapped", 0, "never/a"), ("run_1", "task", -1, "live/soon"),
    ("run_2", "task", -1, "live/later"), ("run_2", "task", -1, "never/b"),
]


def test_clean_removes_only_expired_keys_in_batches(app, make_app, mixed_keys, client, worker_auth):
    batched = make_app(cleanup_batch_size=2)
    deletes: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    with batched.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        result = batched.test_cli_runner().invoke(args=["clean"])
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert result.exit_code == 0, result.output
    assert "Deleted 5 expired keys in 3 batches of at most 2" in result.stdout
    assert len(deletes) == 3
    assert stored_keys(app) == KEPT
    # What is left still works for the workers.
    ti = mixed_keys["second"]["task"]
    response = client.get(key_url(ti, "never/b"), headers=worker_auth(ti))
    assert response.status_code == 200 and response.json == {"value": {"key": "never/b"}}

    again = batched.test_cli_runner().invoke(args=["clean"])
    assert again.exit_code == 0
    assert "Deleted 0 expired keys" in again.stdout
    assert stored_keys(app) == KEPT


@pytest.mark.parametrize("ratio", [0.0, 1.0, 3.0])
def test_clean_pauses_after_each_batch_in_proportion_to_it(make_app, mixed_keys, monkeypatch, ratio):
    from webapp.cli import data

    clock = iter(range(0, 1000, 2))  # each batch appears to take 2 s
    pauses: list[float] = []
    monkeypatch.setattr(data, "time", SimpleNamespace(monotonic=lambda: next(clock), sleep=pauses.append,
                                                      perf_counter=lambda: 0.0))
    result = make_app(cleanup_batch_size=2, cleanup_pause_ratio=ratio).test_cli_runner().invoke(args=["clean"])
    assert result.exit_code == 0, result.output
    assert "Deleted 5 expired keys in 3 batches" in result.stdout
    assert pauses == [2 * ratio] * 3


def test_ctrl_c_between_batches_stops_keeping_the_finished_batches_and_says_how_far(app, make_app, mixed_keys,
                                                                                   monkeypatch):
    from webapp.cli import data

    def interrupt(_seconds):  # Ctrl-C during the pause after the first batch
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "time", SimpleNamespace(monotonic=lambda: 0.0, sleep=interrupt,
                                                      perf_counter=lambda: 0.0))
    result = make_app(cleanup_batch_size=2).test_cli_runner().invoke(args=["clean"])
    assert result.exit_code == 130, result.output
    assert "Interrupted: 2 keys done in 1 batches" in result.stderr
    assert "Deleted" not in result.stdout
    left = [key for *_names, key in stored_keys(app) if key.startswith("expired/")]
    assert len(left) == 3  # the first batch is gone, the rest untouched: nothing half-done


@pytest.mark.slow
def test_clean_on_a_terminal_shows_a_bar_with_count_and_rate_and_elsewhere_one_line(
        migrated_database, instance_path, mixed_keys):
    env = server_env(migrated_database, instance_path, cleanup_batch_size=2, cleanup_pause_ratio=0)
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "webapp", "clean"], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=follower) as process:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            terminal += chunk
        summary = process.stdout.read().decode()
    os.close(leader)
    assert process.returncode == 0
    shown = terminal.decode(errors="replace")
    assert "Deleting expired keys" in shown and "5/5" in shown and "keys/s" in shown
    assert summary.strip().splitlines() == ["Deleted 5 expired keys in 3 batches of at most 2"]

    again = subprocess.run([sys.executable, "-m", "webapp", "clean"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and again.stderr == ""  # not a terminal: no bar, only the summary
    assert again.stdout.strip() == "Deleted 0 expired keys in 0 batches of at most 2"


def test_clean_dry_run_lists_expired_keys_and_deletes_nothing(app, make_app, mixed_keys):
    before = stored_keys(app)
    result = make_app(cleanup_batch_size=2).test_cli_runner().invoke(args=["clean", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "5 expired keys would be deleted"
    listed = lines[:-1]
    assert sorted(line.split("\t")[4] for line in listed) == [f"expired/{c}" for c in "abcde"]
    assert any(line.split("\t")[:4] == ["dag", "run_1", "mapped", "1"] for line in listed)
    assert "live/" not in result.stdout and "never/" not in result.stdout
    assert stored_keys(app) == before
    assert len(before) == 9


def test_clean_with_nothing_expired(app, runner, ti_id, worker_put):
    worker_put(ti_id, "job", 1)
    dry = runner.invoke(args=["clean", "--dry-run"])
    assert dry.exit_code == 0 and dry.stdout.strip() == "0 expired keys would be deleted"
    result = runner.invoke(args=["clean"])
    assert result.exit_code == 0
    assert "Deleted 0 expired keys" in result.stdout
    assert stored_keys(app) == [("run_1", "task", -1, "job")]


# --- demo-data ----------------------------------------------------------------------------


LOADED = re.compile(r"Loaded (\d+) DAG runs, (\d+) task instances, (\d+) keys")


def test_demo_data_looks_like_a_real_deployment(app, client, runner, admin_auth):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    runs_loaded, tis_loaded, keys_loaded = map(int, LOADED.search(result.stdout).groups())
    now = datetime.now(UTC)
    with app.app_context():
        dag_runs = db.session.execute(select(DagRun)).scalars().all()
        instances = db.session.execute(select(TaskInstance)).scalars().all()
        keys = db.session.execute(select(TaskState)).scalars().all()
        assert (len(dag_runs), len(instances), len(keys)) == (runs_loaded, tis_loaded, keys_loaded)

        assert len({run.dag_id for run in dag_runs}) >= 3
        assert {"running", "success", "failed"} <= {run.state for run in dag_runs}
        # Mapped tasks: several map indexes of one task in one run.
        per_task = {}
        for ti in instances:
            per_task.setdefault((ti.dag_run_id, ti.task_id), set()).add(ti.map_index)
        assert any(len(indexes) > 1 and -1 not in indexes for indexes in per_task.values())
        # Retries: a task on its second try or later, and one waiting for its retry.
        assert any(ti.try_number > 1 for ti in instances)
        assert any(ti.state == "up_for_retry" for ti in instances)
        # Expiry: some soon, some already past (not yet collected), some never, some later.
        expiries = [key.expires_at for key in keys]
        assert any(e is None for e in expiries)
        assert any(e is not None and e <= now for e in expiries)
        assert any(e is not None and now < e <= now + timedelta(days=1) for e in expiries)
        assert any(e is not None and e > now + timedelta(days=1) for e in expiries)
        for key in keys:
            assert json.loads(key.value) is not None

    # The admin API shows it.
    headers = admin_auth("viewer")
    dags = client.get("/api/v2/dags", headers=headers).json
    assert dags["total_entries"] == len({run.dag_id for run in dag_runs})
    assert all(dag["run_count"] > 0 for dag in dags["dags"])
    assert any(dag["key_count"] > 0 for dag in dags["dags"])


def test_demo_data_twice_adds_nothing(app, runner):
    first = runner.invoke(args=["demo-data"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        counts = [db.session.execute(select(func.count()).select_from(model)).scalar_one()
                  for model in (DagRun, TaskInstance, TaskState)]
    second = runner.invoke(args=["demo-data"])
    assert second.exit_code == 0, second.output
    assert "Loaded 0 DAG runs, 0 task instances, 0 keys" in second.stdout
    with app.app_context():
        assert counts == [db.session.execute(select(func.count()).select_from(model)).scalar_one()
                          for model in (DagRun, TaskInstance, TaskState)]


def test_demo_keys_are_readable_by_workers_until_they_expire(app, client, runner):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    now = datetime.now(UTC)
    with app.app_context():
        rows = db.session.execute(
            select(TaskInstance.id, TaskState.key, TaskState.value, TaskState.expires_at)
            .join(TaskInstance, (TaskInstance.dag_run_id == TaskState.dag_run_id)
                  & (TaskInstance.task_id == TaskState.task_id) & (TaskInstance.map_index == TaskState.map_index))
        ).all()
    live = next(row for row in rows if row.expires_at is None)
    expired = next(row for row in rows if row.expires_at is not None and row.expires_at <= now)

    for row, status in ((live, 200), (expired, 404)):
        token = last_line(runner.invoke(args=["token", str(row.id)]))
        response = client.get(key_url(row.id, row.key), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status, row
        if status == 200:
            assert response.json == {"value": json.loads(row.value)}

    # And clean collects exactly the expired ones.
    expired_count = sum(1 for row in rows if row.expires_at is not None and row.expires_at <= now)
    result = runner.invoke(args=["clean"])
    assert f"Deleted {expired_count} expired keys" in result.stdout
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(TaskState)).scalar_one() == len(rows) - expired_count
