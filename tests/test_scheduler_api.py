"""The scheduler side of the admin API: creating DAG runs with their task
instances, moving task instances through their states (retries share keys, clear_on_success),
deleting runs, issuing worker tokens, the listings, and who may do what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from support import key_url, put_key
from webapp.extensions import db
from webapp.models import ApiKey, DagRun, TaskInstance, TaskState

API = "/api/v2"


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def admin(admin_auth):
    return admin_auth()


@pytest.fixture
def viewer(admin_auth):
    return admin_auth("viewer")


def create_run(client, headers, dag_id="dag", run_id="run_1", tasks=({"task_id": "task"},), **extra):
    response = client.post(f"{API}/dags/{dag_id}/dagRuns", headers=headers,
                           json={"dag_run_id": run_id, "tasks": list(tasks), **extra})
    assert response.status_code == 201, response.json
    return response.json


def ti_ids(created: dict) -> dict:
    """{task_id or (task_id, map_index): id} from a create response."""
    found = {}
    for ti in created["task_instances"]:
        found[(ti["task_id"], ti["map_index"])] = ti["id"]
        if ti["map_index"] == -1:
            found[ti["task_id"]] = ti["id"]
    return found


def ti_url(dag_id="dag", run_id="run_1", task_id="task", map_index=None):
    url = f"{API}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
    return url if map_index is None else f"{url}?map_index={map_index}"


def set_state(client, headers, state, **where):
    response = client.patch(ti_url(**where), headers=headers, json={"state": state})
    assert response.status_code == 200, response.json
    return response.json


def worker_get(client, headers, ti, key):
    return client.get(key_url(ti, key, encode=False), headers=headers)


def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def keys_of(app, **where) -> list[tuple]:
    """(dag_id, run_id, task_id, map_index, key) of the stored rows, sorted."""
    with app.app_context():
        statement = select(TaskState.dag_id, TaskState.run_id, TaskState.task_id, TaskState.map_index, TaskState.key)
        for name, value in where.items():
            statement = statement.where(getattr(TaskState, name) == value)
        return sorted(tuple(row) for row in db.session.execute(statement).all())


def assert_field_error(response, field: str, status: int = 422):
    assert response.status_code == status, response.json
    assert response.mimetype == "application/json"
    detail = response.json["detail"]
    assert detail["reason"] == "validation_error"
    assert detail["field"] == field
    assert field in detail["message"]


# --- creating runs ------------------------------------------------------------------------


def test_create_run_returns_the_run_and_its_task_instances(app, client, admin):
    response = client.post(f"{API}/dags/etl/dagRuns", headers=admin, json={
        "dag_run_id": "manual__1",
        "logical_date": "2026-01-02T03:04:05Z",
        "tasks": [{"task_id": "extract"}, {"task_id": "copy", "map_indexes": [0, 1, 2]}],
    })
    assert response.status_code == 201, response.json
    body = response.json
    assert body["dag_id"] == "etl"
    assert body["dag_run_id"] == "manual__1"
    assert body["state"] == "queued"
    assert datetime.fromisoformat(body["logical_date"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    instances = body["task_instances"]
    assert sorted((ti["task_id"], ti["map_index"]) for ti in instances) == [
        ("copy", 0), ("copy", 1), ("copy", 2), ("extract", -1),
    ]
    for ti in instances:
        assert {"id", "task_id", "map_index", "state", "try_number"} <= set(ti)
        assert ti["state"] is None
        assert ti["try_number"] == 0
        uuid.UUID(ti["id"])
    assert len({ti["id"] for ti in instances}) == 4

    # What was answered is what was stored, and the listing shows the same task instances.
    assert count(app, DagRun, DagRun.dag_id == "etl") == 1
    assert count(app, TaskInstance, TaskInstance.dag_id == "etl", TaskInstance.run_id == "manual__1") == 4
    listed = client.get(f"{API}/dags/etl/dagRuns/manual__1/taskInstances", headers=admin).json
    assert {ti["id"] for ti in listed["task_instances"]} == {ti["id"] for ti in instances}
    run = client.get(f"{API}/dags/etl/dagRuns/manual__1", headers=admin)
    assert run.status_code == 200 and run.json["state"] == "queued"


def test_create_run_without_logical_date_or_tasks(client, admin):
    body = create_run(client, admin, tasks=())
    assert body["logical_date"] is None
    assert body["task_instances"] == []


def test_a_naive_logical_date_is_read_as_utc(client, admin):
    body = create_run(client, admin, logical_date="2026-03-04T05:06:07")
    assert datetime.fromisoformat(body["logical_date"]) == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_creating_an_existing_run_is_a_conflict_and_changes_nothing(app, client, admin):
    first = create_run(client, admin, tasks=[{"task_id": "a"}])
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin,
                           json={"dag_run_id": "run_1", "tasks": [{"task_id": "b"}, {"task_id": "c"}]})
    assert response.status_code == 409
    assert response.json["detail"]["reason"] == "conflict"
    assert "run_1" in response.json["detail"]["message"]
    assert count(app, DagRun) == 1
    with app.app_context():
        stored = db.session.execute(select(TaskInstance.id)).scalars().all()
    assert [str(ti) for ti in stored] == [first["task_instances"][0]["id"]]


def test_the_same_run_id_in_another_dag_is_another_run(app, client, admin):
    create_run(client, admin, dag_id="one")
    create_run(client, admin, dag_id="two")
    assert count(app, DagRun, DagRun.run_id == "run_1") == 2


BAD_CREATE_BODIES = [
    pytest.param({"tasks": []}, "dag_run_id", id="missing dag_run_id"),
    pytest.param({"dag_run_id": ""}, "dag_run_id", id="empty dag_run_id"),
    pytest.param({"dag_run_id": 7}, "dag_run_id", id="dag_run_id not a string"),
    pytest.param({"dag_run_id": "r", "tasks": "extract"}, "tasks", id="tasks not a list"),
    pytest.param({"dag_run_id": "r", "tasks": {"task_id": "t"}}, "tasks", id="tasks an object"),
    pytest.param({"dag_run_id": "r", "tasks": ["t"]}, "tasks[0]", id="task not an object"),
    pytest.param({"dag_run_id": "r", "tasks": [{"map_indexes": [0]}]}, "tasks[0].task_id", id="missing task_id"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": ""}]}, "tasks[0].task_id", id="empty task_id"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [0, "1"]}]},
                 "tasks[0].map_indexes[1]", id="map_indexes not ints"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [0, 1.5]}]},
                 "tasks[0].map_indexes[1]", id="map_indexes floats"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [True]}]},
                 "tasks[0].map_indexes[0]", id="map_indexes bools"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": 3}]},
                 "tasks[0].map_indexes", id="map_indexes not a list"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [0, 0]}]},
                 "map_indexes", id="map_indexes repeated"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [-1]}]},
                 "tasks[0].map_indexes[0]", id="map_indexes negative"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t"}, {"task_id": "t"}]}, "tasks", id="duplicate task"),
    pytest.param({"dag_run_id": "r", "conf": {}}, "conf", id="unknown field"),
    pytest.param({"dag_run_id": "r", "tasks": [{"task_id": "t", "pool": "p"}]}, "tasks[0].pool",
                 id="unknown task field"),
    pytest.param({"dag_run_id": "r", "logical_date": "yesterday"}, "logical_date", id="logical_date not a timestamp"),
    pytest.param({"dag_run_id": "r", "logical_date": 1700000000}, "logical_date", id="logical_date a number"),
    pytest.param(["r"], "body", id="body not an object"),
]


@pytest.mark.parametrize("body, field", BAD_CREATE_BODIES)
def test_a_bad_create_body_is_422_naming_the_field(app, client, admin, body, field):
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin, json=body)
    assert_field_error(response, field)
    assert count(app, DagRun) == 0
    assert count(app, TaskInstance) == 0


def test_a_malformed_create_body_is_422(app, client, admin):
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin, data='{"dag_run_id": "r",',
                           content_type="application/json")
    assert_field_error(response, "body")
    assert count(app, DagRun) == 0


def test_a_too_long_dag_id_is_422(app, client, admin):
    response = client.post(f"{API}/dags/{'d' * 251}/dagRuns", headers=admin, json={"dag_run_id": "r"})
    assert_field_error(response, "dag_id")
    assert count(app, DagRun) == 0


# --- state changes ------------------------------------------------------------------------


def test_first_run_is_try_one(client, admin):
    create_run(client, admin)
    assert set_state(client, admin, "scheduled")["try_number"] == 0
    assert set_state(client, admin, "queued")["try_number"] == 0
    running = set_state(client, admin, "running")
    assert running["state"] == "running"
    assert running["try_number"] == 1
    assert running["start_date"] is not None and running["end_date"] is None
    # Saying "running" again is not a new try.
    assert set_state(client, admin, "running")["try_number"] == 1
    stored = client.get(ti_url(), headers=admin).json
    assert stored["state"] == "running" and stored["try_number"] == 1


def test_a_retry_is_a_new_try_with_a_new_id_that_keeps_the_keys(app, client, admin, worker_auth, worker_put):
    ti = ti_ids(create_run(client, admin))["task"]
    set_state(client, admin, "queued")
    first = set_state(client, admin, "running")
    assert first["id"] == ti  # the first try keeps the id the run was created with
    token = worker_auth(ti)  # the first try's token
    worker_put(ti, "spark/job_id", "application_1")
    worker_put(ti, "checkpoint", {"offset": 40})

    failed_try = set_state(client, admin, "up_for_retry")
    assert failed_try["try_number"] == 1
    retry = set_state(client, admin, "running")
    assert retry["try_number"] == 2
    assert retry["id"] != ti  # a new try, a new id: the first try's token is fenced off

    # The retry finds what its predecessor stored; the first try's token no longer works.
    new = worker_auth(retry["id"])
    response = worker_get(client, new, retry["id"], "spark/job_id")
    assert response.status_code == 200 and response.json == {"value": "application_1"}
    assert worker_get(client, new, retry["id"], "checkpoint").json == {"value": {"offset": 40}}
    stale = worker_get(client, token, ti, "checkpoint")
    assert stale.status_code == 404 and stale.json["detail"]["message"] == f"Task instance {ti} not found"
    assert [row[-1] for row in keys_of(app)] == ["checkpoint", "spark/job_id"]


def test_a_retry_through_scheduled_and_queued_is_a_new_try(app, client, admin, worker_auth, worker_put):
    """Airflow's own path for a retry: up_for_retry -> scheduled -> queued -> running."""
    ti = ti_ids(create_run(client, admin))["task"]
    for state in ("scheduled", "queued", "running"):
        set_state(client, admin, state)
    worker_put(ti, "job", "j1")
    set_state(client, admin, "up_for_retry")
    set_state(client, admin, "scheduled")
    assert set_state(client, admin, "queued")["try_number"] == 1
    assert set_state(client, admin, "running")["try_number"] == 2
    set_state(client, admin, "up_for_retry")
    third = set_state(client, admin, "running")
    assert third["try_number"] == 3 and third["id"] != ti
    assert worker_get(client, worker_auth(third["id"]), third["id"], "job").json == {"value": "j1"}


@pytest.mark.parametrize("pause", ["deferred", "up_for_reschedule"])
def test_resuming_a_deferred_or_rescheduled_task_is_the_same_try(client, admin, pause):
    create_run(client, admin)
    set_state(client, admin, "queued")
    set_state(client, admin, "running")
    set_state(client, admin, pause)
    if pause == "up_for_reschedule":
        set_state(client, admin, "scheduled")
        set_state(client, admin, "queued")
    assert set_state(client, admin, "running")["try_number"] == 1


def test_a_failed_task_run_again_is_a_new_try(client, admin):
    create_run(client, admin)
    set_state(client, admin, "running")
    failed = set_state(client, admin, "failed")
    assert failed["end_date"] is not None
    set_state(client, admin, "none")
    set_state(client, admin, "queued")
    assert set_state(client, admin, "running")["try_number"] == 2


def test_none_state_is_accepted_as_null_or_none(client, admin):
    create_run(client, admin)
    set_state(client, admin, "queued")
    assert set_state(client, admin, None)["state"] is None
    set_state(client, admin, "queued")
    assert set_state(client, admin, "none")["state"] is None


def test_success_keeps_keys_when_clear_on_success_is_off(app, client, admin, worker_auth, worker_put):
    ti = ti_ids(create_run(client, admin))["task"]
    set_state(client, admin, "running")
    worker_put(ti, "job", "j1")
    set_state(client, admin, "success")
    assert [row[-1] for row in keys_of(app)] == ["job"]
    assert worker_get(client, worker_auth(ti), ti, "job").json == {"value": "j1"}


def test_success_clears_only_that_task_instances_keys_when_clear_on_success_is_on(
    app, make_app, admin, worker_auth
):
    clearing = make_app(clear_on_success=True).test_client()
    ids = ti_ids(create_run(clearing, admin, tasks=[
        {"task_id": "copy", "map_indexes": [0, 1]}, {"task_id": "other"},
    ]))
    other_run = ti_ids(create_run(clearing, admin, run_id="run_2", tasks=[{"task_id": "copy", "map_indexes": [0]}]))
    for ti in (ids[("copy", 0)], ids[("copy", 1)], ids["other"], other_run[("copy", 0)]):
        put_key(clearing, worker_auth(ti), ti, "job", "j")
        put_key(clearing, worker_auth(ti), ti, "progress", 50)

    set_state(clearing, admin, "running", task_id="copy", map_index=0)
    # Non-final states keep the keys.
    set_state(clearing, admin, "up_for_retry", task_id="copy", map_index=0)
    set_state(clearing, admin, "running", task_id="copy", map_index=0)
    assert len(keys_of(app)) == 8
    done = set_state(clearing, admin, "success", task_id="copy", map_index=0)
    assert done["state"] == "success"

    assert keys_of(app, run_id="run_1", task_id="copy", map_index=0) == []
    assert keys_of(app) == [
        ("dag", "run_1", "copy", 1, "job"), ("dag", "run_1", "copy", 1, "progress"),
        ("dag", "run_1", "other", -1, "job"), ("dag", "run_1", "other", -1, "progress"),
        ("dag", "run_2", "copy", 0, "job"), ("dag", "run_2", "copy", 0, "progress"),
    ]
    gone = worker_get(clearing, worker_auth(ids[("copy", 0)]), ids[("copy", 0)], "job")
    assert gone.status_code == 404
    # A failure does not clear: the keys are there for whoever looks into it.
    set_state(clearing, admin, "running", task_id="other")
    set_state(clearing, admin, "failed", task_id="other")
    assert [row[-1] for row in keys_of(app, task_id="other")] == ["job", "progress"]


def test_clear_on_success_does_not_clear_when_the_state_change_is_refused(app, make_app, admin, worker_auth):
    clearing = make_app(clear_on_success=True).test_client()
    ti = ti_ids(create_run(clearing, admin))["task"]
    put_key(clearing, worker_auth(ti), ti, "job", "j")
    response = clearing.patch(ti_url(), headers=admin, json={"state": "sucess"})
    assert_field_error(response, "state")
    assert [row[-1] for row in keys_of(app)] == ["job"]
    assert clearing.get(ti_url(), headers=admin).json["state"] is None


def test_state_of_a_mapped_task_instance(client, admin):
    create_run(client, admin, tasks=[{"task_id": "copy", "map_indexes": [0, 1]}])
    changed = set_state(client, admin, "running", task_id="copy", map_index=1)
    assert changed["map_index"] == 1 and changed["try_number"] == 1
    other = client.get(ti_url(task_id="copy", map_index=0), headers=admin).json
    assert other["state"] is None and other["try_number"] == 0
    # There is no unmapped instance of a mapped task.
    response = client.patch(ti_url(task_id="copy"), headers=admin, json={"state": "running"})
    assert response.status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"state": "sucess"}, "state"),
    ({"state": 3}, "state"),
    ({"state": ["running"]}, "state"),
    ({}, "state"),
    ({"state": "running", "try_number": 5}, "try_number"),
])
def test_a_bad_state_body_is_422_naming_the_field(client, admin, body, field):
    create_run(client, admin)
    response = client.patch(ti_url(), headers=admin, json=body)
    assert_field_error(response, field)
    stored = client.get(ti_url(), headers=admin).json
    assert stored["state"] is None and stored["try_number"] == 0


@pytest.mark.parametrize("map_index", ["abc", "-2", "1.5"])
def test_a_bad_map_index_is_422(client, admin, map_index):
    create_run(client, admin)
    response = client.patch(ti_url(map_index=map_index), headers=admin, json={"state": "running"})
    assert_field_error(response, "map_index")


def test_state_change_of_an_unknown_task_instance_is_404(client, admin):
    create_run(client, admin)
    for url in (ti_url(task_id="nope"), ti_url(run_id="nope"), ti_url(dag_id="nope"), ti_url(map_index=0)):
        response = client.patch(url, headers=admin, json={"state": "running"})
        assert response.status_code == 404, url
        assert response.json["detail"]["reason"] == "not_found"


# --- run state ----------------------------------------------------------------------------


def run_of(client, headers, dag_id="dag", run_id="run_1"):
    response = client.get(f"{API}/dags/{dag_id}/dagRuns/{run_id}", headers=headers)
    assert response.status_code == 200
    return response.json


def test_run_state_follows_its_task_instances(client, admin):
    create_run(client, admin, tasks=[{"task_id": "a"}, {"task_id": "b"}])
    run = run_of(client, admin)
    assert run["state"] == "queued" and run["start_date"] is None
    set_state(client, admin, "queued", task_id="a")
    assert run_of(client, admin)["state"] == "running"
    set_state(client, admin, "running", task_id="a")
    set_state(client, admin, "success", task_id="a")
    run = run_of(client, admin)
    assert run["state"] == "running"  # b has not run yet
    assert run["start_date"] is not None and run["end_date"] is None
    set_state(client, admin, "running", task_id="b")
    set_state(client, admin, "up_for_retry", task_id="b")
    assert run_of(client, admin)["state"] == "running"
    set_state(client, admin, "running", task_id="b")
    set_state(client, admin, "success", task_id="b")
    run = run_of(client, admin)
    assert run["state"] == "success" and run["end_date"] is not None
    # Running a task again reopens the run.
    set_state(client, admin, "queued", task_id="b")
    run = run_of(client, admin)
    assert run["state"] == "running" and run["end_date"] is None


@pytest.mark.parametrize("final_states, run_state", [
    (("success", "success"), "success"),
    (("success", "skipped"), "success"),
    (("skipped", "removed"), "success"),
    (("success", "failed"), "failed"),
    (("failed", "upstream_failed"), "failed"),
    (("success", "upstream_failed"), "failed"),
    (("success", "up_for_retry"), "running"),
    (("success", "deferred"), "running"),
    (("failed", "running"), "running"),
])
def test_final_run_state(client, admin, final_states, run_state):
    create_run(client, admin, tasks=[{"task_id": "a"}, {"task_id": "b"}])
    for task_id, state in zip("ab", final_states, strict=True):
        set_state(client, admin, state, task_id=task_id)
    assert run_of(client, admin)["state"] == run_state


# --- deleting runs ------------------------------------------------------------------------


def test_deleting_a_run_removes_its_task_instances_and_keys_only(app, client, admin, worker_auth, worker_put):
    doomed = ti_ids(create_run(client, admin, tasks=[{"task_id": "a"}, {"task_id": "m", "map_indexes": [0, 1]}]))
    kept = ti_ids(create_run(client, admin, run_id="run_2", tasks=[{"task_id": "a"}]))
    same_run_id = ti_ids(create_run(client, admin, dag_id="other", tasks=[{"task_id": "a"}]))
    for ti in (doomed["a"], doomed[("m", 0)], doomed[("m", 1)], kept["a"], same_run_id["a"]):
        worker_put(ti, "job", "j")
    doomed_token = worker_auth(doomed["a"])

    response = client.delete(f"{API}/dags/dag/dagRuns/run_1", headers=admin)
    assert response.status_code == 204

    assert count(app, DagRun, DagRun.dag_id == "dag", DagRun.run_id == "run_1") == 0
    assert count(app, TaskInstance, TaskInstance.dag_id == "dag", TaskInstance.run_id == "run_1") == 0
    assert keys_of(app) == [("dag", "run_2", "a", -1, "job"), ("other", "run_1", "a", -1, "job")]
    assert count(app, TaskInstance) == 2
    assert client.get(f"{API}/dags/dag/dagRuns/run_1", headers=admin).status_code == 404
    assert client.get(f"{API}/dags/dag/dagRuns/run_1/taskInstances", headers=admin).status_code == 404
    # The deleted run's workers find nothing; the others still find their keys.
    gone = worker_get(client, doomed_token, doomed["a"], "job")
    assert gone.status_code == 404
    assert gone.json["detail"]["message"] == f"Task instance {doomed['a']} not found"
    assert worker_get(client, worker_auth(kept["a"]), kept["a"], "job").json == {"value": "j"}
    assert worker_get(client, worker_auth(same_run_id["a"]), same_run_id["a"], "job").json == {"value": "j"}
    # A run of the same id can be created again, and starts without keys.
    fresh = ti_ids(create_run(client, admin, tasks=[{"task_id": "a"}]))
    assert worker_get(client, worker_auth(fresh["a"]), fresh["a"], "job").status_code == 404


def test_deleting_an_unknown_run_is_404(app, client, admin):
    create_run(client, admin)
    for url in (f"{API}/dags/dag/dagRuns/nope", f"{API}/dags/nope/dagRuns/run_1"):
        response = client.delete(url, headers=admin)
        assert response.status_code == 404
        assert response.json["detail"]["reason"] == "not_found"
    assert count(app, DagRun) == 1


# --- worker tokens ------------------------------------------------------------------------


def test_token_for_a_task_instance_works_on_the_worker_api(make_app, admin):
    client = make_app(token_lifetime_seconds=120).test_client()
    ids = ti_ids(create_run(client, admin, tasks=[{"task_id": "a"}, {"task_id": "b"}]))
    before = datetime.now(UTC)
    response = client.post(f"{API}/taskInstances/{ids['a']}/token", headers=admin)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"token", "expires_at"}
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before < expires_at <= datetime.now(UTC) + timedelta(seconds=120)
    headers = {"Authorization": f"Bearer {body['token']}"}

    put = client.put(key_url(ids["a"], "job"), headers=headers, json={"value": 1, "expires_at": None})
    assert put.status_code == 204
    assert worker_get(client, headers, ids["a"], "job").json == {"value": 1}
    # Good for that task instance only.
    assert worker_get(client, headers, ids["b"], "job").status_code == 403


@pytest.mark.parametrize("ti", [str(uuid.UUID(int=1)), "not-a-uuid"])
def test_token_for_an_unknown_task_instance_is_404(client, admin, ti):
    create_run(client, admin)
    response = client.post(f"{API}/taskInstances/{ti}/token", headers=admin)
    assert response.status_code == 404
    assert response.json["detail"]["reason"] == "not_found"
    assert ti in response.json["detail"]["message"]


# --- who may do what ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer tsk_not-a-real-key"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "tsk_missing-scheme"},
], ids=["none", "unknown key", "empty", "basic", "no scheme"])
def test_no_key_or_a_bad_key_is_401_json(client, headers):
    response = client.get(f"{API}/dags", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.json["detail"]["reason"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_deleted_api_key_stops_working(app, client, admin):
    assert client.get(f"{API}/dags", headers=admin).status_code == 200
    with app.app_context():
        db.session.execute(ApiKey.__table__.delete())
        db.session.commit()
    assert client.get(f"{API}/dags", headers=admin).status_code == 401


def test_a_viewer_can_read_but_not_change(app, client, admin, viewer, worker_put):
    ti = ti_ids(create_run(client, admin))["task"]
    worker_put(ti, "job", "j")
    for url in (f"{API}/dags", f"{API}/dags/dag/dagRuns", f"{API}/dags/dag/dagRuns/run_1",
                f"{API}/dags/dag/dagRuns/run_1/taskInstances", ti_url()):
        assert client.get(url, headers=viewer).status_code == 200, url

    refused = [
        client.post(f"{API}/dags/dag/dagRuns", headers=viewer, json={"dag_run_id": "run_2"}),
        client.patch(ti_url(), headers=viewer, json={"state": "running"}),
        client.delete(f"{API}/dags/dag/dagRuns/run_1", headers=viewer),
        client.post(f"{API}/taskInstances/{ti}/token", headers=viewer),
    ]
    for response in refused:
        assert response.status_code == 403
        assert response.json["detail"]["reason"] == "forbidden"
        assert "admin" in response.json["detail"]["message"]
    assert "token" not in refused[-1].json
    assert count(app, DagRun) == 1
    assert client.get(ti_url(), headers=admin).json["state"] is None
    assert keys_of(app) == [("dag", "run_1", "task", -1, "job")]


# --- listings -----------------------------------------------------------------------------


def test_dag_listing_is_ordered_and_paged(app, client, admin, worker_put):
    create_run(client, admin, dag_id="b_dag", run_id="r1")
    create_run(client, admin, dag_id="b_dag", run_id="r2")
    ids = ti_ids(create_run(client, admin, dag_id="a_dag", run_id="r1"))
    create_run(client, admin, dag_id="c_dag", run_id="r1")
    worker_put(ids["task"], "live", 1)
    worker_put(ids["task"], "forever", 2)
    worker_put(ids["task"], "expired", 3, "2000-01-01T00:00:00Z")

    body = client.get(f"{API}/dags", headers=admin).json
    assert body["total_entries"] == 3
    assert [dag["dag_id"] for dag in body["dags"]] == ["a_dag", "b_dag", "c_dag"]
    by_id = {dag["dag_id"]: dag for dag in body["dags"]}
    assert by_id["b_dag"]["run_count"] == 2
    assert by_id["a_dag"]["key_count"] == 2  # the expired key is gone for every reader
    assert by_id["c_dag"]["key_count"] == 0

    page = client.get(f"{API}/dags?limit=2&offset=1", headers=admin).json
    assert page["total_entries"] == 3
    assert [dag["dag_id"] for dag in page["dags"]] == ["b_dag", "c_dag"]
    beyond = client.get(f"{API}/dags?offset=10", headers=admin).json
    assert beyond == {"dags": [], "total_entries": 3}


def test_dag_run_listing_filters_by_state_and_pages(client, admin):
    for run_id in ("r1", "r2", "r3", "r4"):
        create_run(client, admin, run_id=run_id)
    create_run(client, admin, dag_id="other", run_id="r1")
    set_state(client, admin, "running", run_id="r2")
    set_state(client, admin, "success", run_id="r2")
    set_state(client, admin, "failed", run_id="r3")
    set_state(client, admin, "running", run_id="r4")

    everything = client.get(f"{API}/dags/dag/dagRuns", headers=admin).json
    assert everything["total_entries"] == 4
    assert {run["dag_run_id"]: run["state"] for run in everything["dag_runs"]} == {
        "r1": "queued", "r2": "success", "r3": "failed", "r4": "running",
    }
    for state, expected in [("success", ["r2"]), ("failed", ["r3"]), ("running", ["r4"]), ("queued", ["r1"])]:
        body = client.get(f"{API}/dags/dag/dagRuns?state={state}", headers=admin).json
        assert [run["dag_run_id"] for run in body["dag_runs"]] == expected
        assert body["total_entries"] == 1

    first = client.get(f"{API}/dags/dag/dagRuns?limit=3", headers=admin).json
    rest = client.get(f"{API}/dags/dag/dagRuns?limit=3&offset=3", headers=admin).json
    assert len(first["dag_runs"]) == 3 and len(rest["dag_runs"]) == 1
    assert first["total_entries"] == rest["total_entries"] == 4
    seen = [run["dag_run_id"] for run in first["dag_runs"] + rest["dag_runs"]]
    assert sorted(seen) == ["r1", "r2", "r3", "r4"]

    unknown = client.get(f"{API}/dags/nope/dagRuns", headers=admin).json
    assert unknown == {"dag_runs": [], "total_entries": 0}


def test_dag_run_listing_refuses_an_unknown_state(client, admin):
    response = client.get(f"{API}/dags/dag/dagRuns?state=finished", headers=admin)
    assert_field_error(response, "state")


def test_task_instance_listing_is_ordered_and_paged(client, admin):
    create_run(client, admin, tasks=[{"task_id": "b"}, {"task_id": "a", "map_indexes": [3, 1, 0, 2, 4]}])
    create_run(client, admin, run_id="run_2", tasks=[{"task_id": "a"}])
    url = f"{API}/dags/dag/dagRuns/run_1/taskInstances"
    body = client.get(url, headers=admin).json
    assert body["total_entries"] == 6
    assert [(ti["task_id"], ti["map_index"]) for ti in body["task_instances"]] == [
        ("a", 0), ("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", -1),
    ]
    page = client.get(url + "?limit=2&offset=2", headers=admin).json
    assert page["total_entries"] == 6
    assert [(ti["task_id"], ti["map_index"]) for ti in page["task_instances"]] == [("a", 2), ("a", 3)]
    last = client.get(url + "?limit=4&offset=4", headers=admin).json
    assert [(ti["task_id"], ti["map_index"]) for ti in last["task_instances"]] == [("a", 4), ("b", -1)]
    ti = body["task_instances"][0]
    assert {"id", "task_id", "map_index", "state", "try_number"} <= set(ti)


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=abc", "limit"),
    ("limit=1001", "limit"),
    ("limit=", "limit"),
    ("offset=-1", "offset"),
    ("offset=x", "offset"),
    ("offset=1.5", "offset"),
])
@pytest.mark.parametrize("path", ["/dags", "/dags/dag/dagRuns", "/dags/dag/dagRuns/run_1/taskInstances"])
def test_bad_paging_is_422_naming_the_parameter(client, admin, path, query, field):
    create_run(client, admin)
    response = client.get(f"{API}{path}?{query}", headers=admin)
    assert_field_error(response, field)


def test_largest_page_is_accepted(client, admin):
    create_run(client, admin)
    body = client.get(f"{API}/dags?limit=1000", headers=admin).json
    assert body["total_entries"] == 1


def test_dag_counts_stop_at_the_cap(app, client, admin_auth, make_run, monkeypatch):
    """Counting a DAG's million keys on every view is what made the DAG list slow: counts stop."""
    from webapp import store

    ids = make_run(tasks=(("t", [0, 1, 2]),))
    with app.app_context():
        for map_index in range(3):
            scope = store.find(store.TASK_INSTANCE_BY_ID, ti_id=uuid.UUID(ids[("t", map_index)]))
            for number in range(2):
                store.write(store.TASK_INSTANCE_BY_ID, f"k{number}", "1", None, ti_id=scope.ti_id)
        db.session.commit()
    monkeypatch.setattr(store.counting, "COUNT_CAP", 4)
    dag = client.get(f"{API}/dags", headers=admin_auth()).json["dags"][0]
    assert (dag["task_instances_with_keys"], dag["key_count"]) == (3, 5)  # 6 keys: "more than 4"
