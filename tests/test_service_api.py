"""The service API: keys by identity for a service such as Airflow's storage backend, with an
API key of the service role, which may do this and nothing else."""

from __future__ import annotations

import pytest

from webapp.auth import api_keys
from webapp.extensions import db

API = "/api/v2"
SERVICE = f"{API}/service"
TEXT = '{"a": [1, 2.0],  "b":"x"}'  # spacing and 2.0 as sent: stored and returned byte for byte


@pytest.fixture
def service(app):
    with app.app_context():
        _record, key = api_keys.create("airflow", "service")
        db.session.commit()
    return {"Authorization": f"Bearer {key}"}


def task_key(key="k", dag="etl", run="manual_1", task="load"):
    return f"{SERVICE}/tasks/{dag}/{run}/{task}/keys/{key}"


def test_first_write_creates_the_run_and_task_instance_and_reads_return_the_text_as_sent(client, service, admin_auth):
    assert client.get(task_key(), headers=service).status_code == 404  # a read of something unknown
    assert client.put(task_key(), headers=service, json={"value_json": TEXT, "expires_at": None}).status_code == 204
    read = client.get(task_key(), headers=service)
    assert read.status_code == 200 and read.get_data(as_text=True) == TEXT and read.mimetype == "application/json"
    listed = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances", headers=admin_auth("viewer")).get_json()
    assert [ti["task_id"] for ti in listed["task_instances"]] == ["load"]
    entry = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances/load/state-store/k",
                       headers=admin_auth("viewer"))
    assert entry.get_json()["value"] == {"a": [1, 2.0], "b": "x"} and entry.get_json()["expires_at"] is None


def test_expiry_default_uses_the_servers_retention(client, service, admin_auth):
    client.put(task_key(), headers=service, json={"value_json": "1"})  # expires_at omitted: "default"
    entry = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances/load/state-store/k",
                       headers=admin_auth("viewer"))
    assert entry.get_json()["expires_at"] is not None


def test_mapped_keys_and_clear_of_one_or_every_map_index(client, service):
    for index in (0, 1):
        client.put(task_key() + f"?map_index={index}", headers=service, json={"value_json": str(index)})
    assert client.get(task_key() + "?map_index=1", headers=service).get_data(as_text=True) == "1"
    cleared = client.delete(f"{SERVICE}/tasks/etl/manual_1/load/keys?map_index=0", headers=service)
    assert cleared.get_json() == {"deleted": 1}
    assert client.delete(f"{SERVICE}/tasks/etl/manual_1/load/keys?map_index=0&all_map_indices=true",
                         headers=service).get_json() == {"deleted": 1}
    assert client.delete(f"{SERVICE}/tasks/etl/unknown/load/keys", headers=service).get_json() == {"deleted": 0}
    assert client.delete(task_key(run="unknown"), headers=service).status_code == 204  # nothing to delete


def test_asset_keys_by_name_or_uri_register_the_asset(client, service, admin_auth):
    query = "?name=warehouse.orders&uri=postgres://wh/orders&key=watermark"
    written = client.put(f"{SERVICE}/assets/value{query}", headers=service, json={"value_json": '"2026-12-01"'})
    assert written.status_code == 204
    by_uri = client.get(f"{SERVICE}/assets/value?uri=postgres://wh/orders&key=watermark", headers=service)
    assert by_uri.get_data(as_text=True) == '"2026-12-01"'
    (asset,) = client.get(f"{API}/assets", headers=admin_auth("viewer")).get_json()["assets"]
    assert (asset["name"], asset["uri"]) == ("warehouse.orders", "postgres://wh/orders")
    assert asset["last_updated_by"] == {"kind": "api", "name": "api-key:airflow", "dag_id": None, "run_id": None,
                                        "task_id": None, "map_index": None}
    assert client.delete(f"{SERVICE}/assets/clear?name=warehouse.orders", headers=service).get_json() == {"deleted": 1}


def test_reported_states_and_tries_show_on_the_run(client, service, admin_auth):
    url = f"{SERVICE}/tasks/etl/manual_1/load/state"
    assert client.put(url, headers=service, json={"state": "running", "try_number": 1}).get_json()["try_number"] == 1
    client.put(url, headers=service, json={"state": "up_for_retry", "try_number": 1})
    second = client.put(url, headers=service, json={"state": "running", "try_number": 2}).get_json()
    assert second["try_number"] == 2 and second["state"] == "running"
    run = client.get(f"{API}/dags/etl/dagRuns/manual_1", headers=admin_auth("viewer")).get_json()
    assert run["state"] == "running"
    tries = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances/load/tries", headers=admin_auth("viewer"))
    assert [t["try_number"] for t in tries.get_json()["tries"]] == [1, 2]


def test_a_try_that_ran_unseen_is_counted_in_whatever_state_is_reported(client, service, admin_auth):
    """A reporter that saw nothing of a task until it finished on its second try."""
    url = f"{SERVICE}/tasks/etl/manual_1/load/state"
    done = client.put(url, headers=service, json={"state": "success", "try_number": 2}).get_json()
    assert done["try_number"] == 2 and done["state"] == "success"
    tries = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances/load/tries", headers=admin_auth("viewer"))
    # try 1 was never seen: counted, its state unknown
    assert [(t["try_number"], t["state"]) for t in tries.get_json()["tries"]] == [(1, None), (2, "success")]


def test_a_task_awaiting_a_persons_input_is_a_state_like_any_other(client, service):
    url = f"{SERVICE}/tasks/etl/manual_1/approve/state"
    answer = client.put(url, headers=service, json={"state": "awaiting_input", "try_number": 1})
    assert answer.status_code == 200 and answer.get_json()["state"] == "awaiting_input"


def test_a_value_over_the_size_limit_is_stored_with_a_warning_as_from_a_worker(app, client, service, caplog):
    app.config["TASKSTORE"] = app.config["TASKSTORE"].model_copy(update={"max_value_bytes": 10})
    big = '"' + "x" * 50 + '"'
    assert client.put(task_key(), headers=service, json={"value_json": big}).status_code == 204
    assert client.get(task_key(), headers=service).get_data(as_text=True) == big
    assert "over max_value_bytes=10; stored anyway" in caplog.text


def test_a_service_key_may_do_nothing_else(client, service, ti_id):
    for method, url in (("GET", f"{API}/dags"), ("GET", f"{API}/assets"), ("POST", f"{API}/apiKeys"),
                        ("DELETE", f"{API}/dags/dag/dagRuns/run_1"), ("POST", f"{API}/taskInstances/{ti_id}/token")):
        response = client.open(url, method=method, headers=service, json={})
        assert response.status_code == 403, (method, url)
    assert client.get("/", headers=service).status_code == 302  # no UI either


@pytest.mark.parametrize("role, status", [("viewer", 403), ("editor", 403), ("admin", 404)])
def test_only_service_keys_and_admins_use_the_service_api(client, admin_auth, role, status):
    assert client.get(task_key(), headers=admin_auth(role)).status_code == status


@pytest.mark.parametrize("body, field", [({"value_json": "not json"}, "value_json"), ({"value_json": "null"}, "value"),
                                         ({"value": 1}, "value_json"), ({"value_json": 1}, "value_json")])
def test_bad_bodies_are_422_and_create_nothing(client, service, table_contents, body, field):
    before = table_contents()
    response = client.put(task_key(), headers=service, json=body)
    assert response.status_code == 422 and response.get_json()["detail"]["field"] == field
    assert table_contents() == before


def test_a_huge_try_number_is_counted_without_a_row_for_every_unseen_try(client, service, admin_auth):
    url = f"{SERVICE}/tasks/etl/manual_1/load/state"
    client.put(url, headers=service, json={"state": "running", "try_number": 1})
    done = client.put(url, headers=service, json={"state": "failed", "try_number": 2**31 - 1}).get_json()
    assert done["try_number"] == 2**31 - 1 and done["state"] == "failed"
    tries = client.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances/load/tries?limit=100",
                       headers=admin_auth("viewer")).get_json()["tries"]
    numbers = [t["try_number"] for t in tries]
    assert numbers[0] == 1 and numbers[-1] == 2**31 - 1 and len(numbers) <= 30
    assert [t["state"] for t in tries[1:-1]] == [None] * (len(numbers) - 2)  # unseen: state unknown


def test_a_try_past_the_largest_number_is_refused_not_a_server_error(client, service):
    url = f"{SERVICE}/tasks/etl/manual_1/load/state"
    assert client.put(url, headers=service, json={"state": "up_for_retry", "try_number": 2**31 - 1}).status_code == 200
    again = client.put(url, headers=service, json={"state": "running", "try_number": None})
    assert again.status_code == 422 and again.get_json()["detail"]["field"] == "try_number"
    assert client.get(f"{SERVICE}/tasks/etl/manual_1/load/keys/k", headers=service).status_code == 404
