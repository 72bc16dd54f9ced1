"""A task instance's life: each try its own id (an earlier try's worker is fenced off), clear
starts over (unless keep_task_state), keys that follow a mapped index's input, and purging runs
by age."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from support import key_url, store_url
from webapp.extensions import db
from webapp.models import DagRun, KeyChange, TaskInstance, TaskInstanceHistory, TaskState, utcnow

API = "/api/v2"


def create(client, admin, tasks, run_id="run_1", dag_id="dag"):
    response = client.post(f"{API}/dags/{dag_id}/dagRuns", headers=admin, json={"dag_run_id": run_id, "tasks": tasks})
    assert response.status_code == 201, response.json
    return {(ti["task_id"], ti["map_index"]): ti["id"] for ti in response.json["task_instances"]}


def set_state(client, admin, state, task="task", map_index=-1, run_id="run_1"):
    response = client.patch(f"{API}/dags/dag/dagRuns/{run_id}/taskInstances/{task}?map_index={map_index}",
                            headers=admin, json={"state": state})
    assert response.status_code == 200, response.json
    return response.json


# --- tries --------------------------------------------------------------------------------------


def test_a_stale_try_is_fenced_off_with_airflows_own_client(live_server, client, admin_auth, issue_token):
    """Try 1 writes a checkpoint, the task instance is retried (try 2, a new id), try 2 reads the
    checkpoint, and try 1 (a zombie still running Airflow's client) gets 404 on every call and
    changes nothing."""
    pytest.importorskip("airflow.sdk")
    from airflow.sdk.api.client import Client, ServerResponseError
    from airflow.sdk.execution_time.comms import ErrorResponse

    admin = admin_auth()
    first = create(client, admin, [{"task_id": "task"}])[("task", -1)]
    set_state(client, admin, "running")
    zombie = Client(base_url=live_server + "/execution/", token=issue_token(first))
    zombie.task_state_store.set(uuid.UUID(first), "checkpoint", {"offset": 40}, None)
    set_state(client, admin, "up_for_retry")
    second = set_state(client, admin, "running")
    assert second["try_number"] == 2 and second["id"] != first
    retry = Client(base_url=live_server + "/execution/", token=issue_token(second["id"]))
    assert retry.task_state_store.get(uuid.UUID(second["id"]), "checkpoint").value == {"offset": 40}

    stale = uuid.UUID(first)
    assert isinstance(zombie.task_state_store.get(stale, "checkpoint"), ErrorResponse)  # Airflow's client: a 404
    for call in (lambda: zombie.task_state_store.set(stale, "checkpoint", {"offset": 0}, None),
                 lambda: zombie.task_state_store.delete(stale, "checkpoint"),
                 lambda: zombie.task_state_store.clear(stale)):
        with pytest.raises(ServerResponseError) as refused:
            call()
        assert refused.value.response.status_code == 404
    assert retry.task_state_store.get(uuid.UUID(second["id"]), "checkpoint").value == {"offset": 40}
    for made in (zombie, retry):
        made.close()


def test_each_try_is_listed_with_its_id_and_every_key_says_which_try_wrote_it(client, admin_auth, worker_auth):
    admin = admin_auth()
    first = create(client, admin, [{"task_id": "task"}])[("task", -1)]
    set_state(client, admin, "running")
    client.put(key_url(first, "k"), headers=worker_auth(first), json={"value": 1})
    set_state(client, admin, "up_for_retry")
    second = set_state(client, admin, "running")["id"]
    client.put(key_url(second, "other"), headers=worker_auth(second), json={"value": 2})
    tries = client.get(f"{API}/dags/dag/dagRuns/run_1/taskInstances/task/tries", headers=admin).json["tries"]
    assert [(t["try_number"], t["id"], t["state"]) for t in tries] == [(1, first, "up_for_retry"),
                                                                      (2, second, "running")]
    assert tries[0]["end_date"] is not None and tries[1]["end_date"] is None
    entries = {e["key"]: e["written_by_try"] for e in client.get(store_url(), headers=admin).json["task_state_store"]}
    assert entries == {"k": 1, "other": 2}
    client.put(store_url("k"), headers=admin, json={"value": 3})  # a person's edit: no try
    assert client.get(store_url("k"), headers=admin).json["written_by_try"] is None


# --- clear --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["discard keys", "keep_task_state"])
def test_clear_resets_task_instances_and_discards_their_keys_unless_kept(app, client, admin_auth, worker_auth, keep):
    admin = admin_auth()
    ids = create(client, admin, [{"task_id": "task"}, {"task_id": "other"}])
    set_state(client, admin, "running")
    client.put(key_url(ids[("task", -1)], "checkpoint"), headers=worker_auth(ids[("task", -1)]), json={"value": 1})
    client.put(key_url(ids[("other", -1)], "untouched"), headers=worker_auth(ids[("other", -1)]), json={"value": 1})
    stale = worker_auth(ids[("task", -1)])
    response = client.post(f"{API}/dags/dag/clearTaskInstances", headers=admin,
                           json={"dag_run_id": "run_1", "task_ids": ["task"], "keep_task_state": keep})
    assert response.status_code == 200, response.json
    (cleared,) = response.json["task_instances"]
    assert cleared["state"] is None and cleared["id"] != ids[("task", -1)]
    assert response.json["keys_discarded"] == (0 if keep else 1)
    with app.app_context():
        keys = set(db.session.execute(select(TaskState.key)).scalars())
        actions = list(db.session.execute(select(KeyChange.action, KeyChange.key)).all())
    assert keys == ({"checkpoint", "untouched"} if keep else {"untouched"})
    assert actions == ([] if keep else [("clear", "checkpoint")])
    # The cleared try is fenced off; the next try is a new one and reads what was kept.
    assert client.get(key_url(ids[("task", -1)], "checkpoint"), headers=stale).status_code == 404
    nxt = set_state(client, admin, "running")
    assert nxt["try_number"] == 2
    answer = client.get(key_url(nxt["id"], "checkpoint"), headers=worker_auth(nxt["id"]))
    assert answer.status_code == (200 if keep else 404)


def test_clearing_a_whole_run_clears_every_task_instance(client, admin_auth):
    admin = admin_auth()
    create(client, admin, [{"task_id": "a"}, {"task_id": "b", "map_indexes": [0, 1]}])
    response = client.post(f"{API}/dags/dag/clearTaskInstances", headers=admin, json={"dag_run_id": "run_1"})
    assert len(response.json["task_instances"]) == 3


@pytest.mark.parametrize("body, status, field", [
    ({"dag_run_id": "nope"}, 404, None),
    ({"dag_run_id": "run_1", "task_ids": ["ghost"]}, 404, "task_ids"),
    ({"dag_run_id": "run_1", "force": True}, 422, "force"),
    ({"dag_run_id": "run_1", "keep_task_state": "yes"}, 422, "keep_task_state"),
])
def test_clearing_what_does_not_exist_or_a_bad_body_is_refused(client, admin_auth, table_contents, body, status,
                                                               field):
    admin = admin_auth()
    create(client, admin, [{"task_id": "task"}])
    before = table_contents()
    response = client.post(f"{API}/dags/dag/clearTaskInstances", headers=admin, json=body)
    assert response.status_code == status
    if field:
        assert response.json["detail"]["field"] == field
    assert "nope" in response.json["detail"]["message"] or field
    assert table_contents() == before


def test_clear_from_the_cli(runner, client, admin_auth, worker_auth):
    admin = admin_auth()
    ti = create(client, admin, [{"task_id": "task"}])[("task", -1)]
    client.put(key_url(ti, "k"), headers=worker_auth(ti), json={"value": 1})
    result = runner.invoke(args=["runs", "clear", "dag", "run_1", "--task", "task"])
    assert result.exit_code == 0 and "1 keys discarded" in result.output
    missing = runner.invoke(args=["runs", "clear", "dag", "no-such-run"])
    assert missing.exit_code == 1 and "not found" in missing.output


# --- mapped identity ----------------------------------------------------------------------------


def set_aside_url(map_index: int, rest: str = "") -> str:
    return (f"{API}/dags/dag/dagRuns/run_1/taskInstances/copy/setAsideKeys" + (f"/{rest}" if rest else "")
            + f"?map_index={map_index}")


def test_keys_follow_their_item_when_the_mapped_list_changes_order(app, client, admin_auth, worker_auth):
    admin = admin_auth()
    ids = create(client, admin, [{"task_id": "copy", "map_indexes": [0, 1, 2], "map_keys": ["a", "b", "c"]}])
    for index, item in enumerate("abc"):
        ti = ids[("copy", index)]
        assert client.put(key_url(ti, "ckpt"), headers=worker_auth(ti), json={"value": item}).status_code == 204
    # The list changes: reordered, "b" gone, "d" new.
    expanded = client.post(f"{API}/dags/dag/dagRuns/run_1/taskInstances/copy/expand", headers=admin,
                           json={"map_indexes": [0, 1, 2], "map_keys": ["c", "a", "d"]})
    assert expanded.status_code == 200, expanded.json
    assert (expanded.json["keys_moved"], expanded.json["keys_set_aside"]) == (2, 1)

    def read(index):
        response = client.get(key_url(ids[("copy", index)], "ckpt"), headers=worker_auth(ids[("copy", index)]))
        return response.json.get("value") if response.status_code == 200 else None

    assert [read(0), read(1), read(2)] == ["c", "a", None]  # index 2's new item "d" starts fresh
    # "b"'s checkpoint is set aside at its old index 1 (parked: index 1 now holds "a"'s).
    aside = client.get(set_aside_url(1), headers=admin).json
    assert [(e["key"], e["value"], e["map_key"]) for e in aside["set_aside"]] == [("ckpt", "b", "b")]
    # An editor hands it to index 2 (the person knows "d" continues "b"'s work).
    moved = client.post(set_aside_url(1, "ckpt/move"), headers=admin_auth("editor"), json={"to_map_index": 2})
    assert moved.status_code == 200, moved.json
    assert [read(0), read(1), read(2)] == ["c", "a", "b"]
    again = client.post(set_aside_url(2, "ckpt/move"), headers=admin_auth("editor"), json={"to_map_index": 0})
    assert again.status_code == 404  # it is no longer set aside: index 2 owns it


def test_an_editor_moves_or_deletes_a_key_set_aside(client, admin_auth, worker_auth):
    admin = admin_auth()
    ids = create(client, admin, [{"task_id": "copy", "map_indexes": [0, 1], "map_keys": ["a", "b"]}])
    client.put(key_url(ids[("copy", 1)], "ckpt"), headers=worker_auth(ids[("copy", 1)]), json={"value": "b"})
    client.put(key_url(ids[("copy", 1)], "extra"), headers=worker_auth(ids[("copy", 1)]), json={"value": 1})
    client.post(f"{API}/dags/dag/dagRuns/run_1/taskInstances/copy/expand", headers=admin,
                json={"map_indexes": [0, 1], "map_keys": ["a", "z"]})  # index 1's item replaced
    ti = ids[("copy", 1)]
    assert client.get(key_url(ti, "ckpt"), headers=worker_auth(ti)).status_code == 404  # never handed out
    editor = admin_auth("editor")
    assert client.post(set_aside_url(1, "ckpt/move"), headers=editor, json={"to_map_index": 1}).status_code == 200
    assert client.get(key_url(ti, "ckpt"), headers=worker_auth(ti)).json == {"value": "b"}  # adopted
    assert client.delete(set_aside_url(1, "extra"), headers=editor).status_code == 204
    assert client.get(set_aside_url(1), headers=admin).json["total_entries"] == 0


@pytest.mark.parametrize("map_keys, field", [
    (["a" * 251, "b"], "map_keys[0]"), ([1, "b"], "tasks[0].map_keys[0]"), (["a"], "map_keys"),
    (["a", "a"], "map_keys"),
])
def test_bad_map_keys_are_422(client, admin_auth, map_keys, field):
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin_auth(), json={
        "dag_run_id": "r", "tasks": [{"task_id": "copy", "map_indexes": [0, 1], "map_keys": map_keys}]})
    assert response.status_code == 422 and response.json["detail"]["field"] == field


def test_without_map_keys_nothing_changes(client, admin_auth, worker_auth):
    admin = admin_auth()
    ids = create(client, admin, [{"task_id": "copy", "map_indexes": [0, 1]}])
    client.put(key_url(ids[("copy", 1)], "ckpt"), headers=worker_auth(ids[("copy", 1)]), json={"value": "x"})
    expanded = client.post(f"{API}/dags/dag/dagRuns/run_1/taskInstances/copy/expand", headers=admin,
                           json={"map_indexes": [0, 1, 2]})
    assert (expanded.json["keys_moved"], expanded.json["keys_set_aside"]) == (0, 0)
    assert client.get(key_url(ids[("copy", 1)], "ckpt"), headers=worker_auth(ids[("copy", 1)])).json == {"value": "x"}


# --- purge by age -------------------------------------------------------------------------------


def age_run(app, run_id: str, days: int) -> None:
    """Make a run, its task instances and keys look ``days`` old."""
    then = utcnow() - timedelta(days=days)
    with app.app_context():
        run = db.session.execute(select(DagRun).where(DagRun.run_id == run_id)).scalar_one()
        db.session.execute(update(DagRun).where(DagRun.id == run.id).values(created_at=then, start_date=then,
                                                                             end_date=then))
        db.session.execute(update(TaskInstance).where(TaskInstance.dag_run_id == run.id).values(updated_at=then))
        db.session.execute(update(TaskState).where(TaskState.dag_run_id == run.id).values(updated_at=then))
        db.session.commit()


def test_clean_purges_runs_quiet_for_longer_than_an_age(app, runner, client, admin_auth, worker_auth):
    admin = admin_auth()
    for run_id in ("old", "old-but-active", "new"):
        ti = create(client, admin, [{"task_id": "task"}], run_id=run_id)[("task", -1)]
        client.put(key_url(ti, "k"), headers=worker_auth(ti), json={"value": 1, "expires_at": None})
        client.put(store_url("k", run=run_id), headers=admin, json={"value": 2, "expires_at": None})  # history
    age_run(app, "old", 120)
    age_run(app, "old-but-active", 120)
    with app.app_context():  # one key of the old run written yesterday: the run is active
        db.session.execute(update(TaskState).where(TaskState.run_id == "old-but-active")
                           .values(updated_at=utcnow() - timedelta(days=1)))
        db.session.commit()
    listed = runner.invoke(args=["clean", "--runs-older-than", "90d", "--dry-run"])
    assert listed.exit_code == 0 and listed.output.splitlines()[0].startswith("dag\told\t")
    assert "1 runs with no activity" in listed.output
    result = runner.invoke(args=["clean", "--runs-older-than", "90d"])
    assert result.exit_code == 0 and "Deleted 1 runs" in result.output, result.output
    with app.app_context():
        assert set(db.session.execute(select(DagRun.run_id)).scalars()) == {"old-but-active", "new"}
        assert db.session.execute(select(func.count()).select_from(KeyChange)
                                  .where(KeyChange.run_id == "old")).scalar_one() == 0
        assert db.session.execute(select(func.count()).select_from(TaskInstanceHistory)).scalar_one() == 0


@pytest.mark.parametrize("age", ["90", "ninety days", "0d", "-5d", "3y"])
def test_an_age_that_does_not_parse_is_a_one_line_error_naming_the_flag(runner, age):
    result = runner.invoke(args=["clean", "--runs-older-than", age])
    assert result.exit_code == 2 and "--runs-older-than" in result.output and "Traceback" not in result.output
