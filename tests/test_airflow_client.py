"""Wire compatibility: Airflow's own Task SDK client, unchanged,
against the live server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("airflow.sdk", reason="apache-airflow-task-sdk is not installed")

from airflow.sdk.api.client import BearerAuth, Client, ServerResponseError  # noqa: E402
from airflow.sdk.api.datamodels._generated import TaskStateStoreResponse  # noqa: E402
from airflow.sdk.exceptions import ErrorType  # noqa: E402
from airflow.sdk.execution_time.comms import ErrorResponse, OKResponse  # noqa: E402

from webapp.client import TaskStoreClient  # noqa: E402

KEYS = ["k", "spark/job_id", "a/b/c", "/leading", "a//b/", "ключ/✓ 🚀", "with space?&=#"]
VALUES = ["text", 3, 2.5, True, False, ["x", 1, None], {"nested": {"list": [1, {"deep": None}]}}, {}, []]


@pytest.fixture
def airflow_client(live_server, issue_token):
    """Airflow's client as a worker builds it: base URL ending in /execution/."""
    made: list[Client] = []

    def _make(ti: str, token: str | None = None) -> Client:
        client = Client(base_url=live_server + "/execution/", token=token or issue_token(ti))
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


@pytest.fixture
def store(airflow_client, ti_id):
    return airflow_client(ti_id).task_state_store


@pytest.mark.parametrize("key", KEYS)
def test_set_get_round_trip_for_keys(store, ti_id, stored_rows, key):
    ti = uuid.UUID(ti_id)
    assert store.set(ti, key, {"key": key}, None) == OKResponse(ok=True)
    got = store.get(ti, key)
    assert isinstance(got, TaskStateStoreResponse)
    assert got.value == {"key": key}
    assert [row.key for row in stored_rows()] == [key]  # the percent-encoded key is stored decoded


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_set_get_round_trip_for_values(store, ti_id, value):
    ti = uuid.UUID(ti_id)
    store.set(ti, "v", value, None)
    got = store.get(ti, "v").value
    assert got == value
    assert type(got) is type(value)


def test_missing_key_is_an_error_response(store, ti_id):
    got = store.get(uuid.UUID(ti_id), "never/set")
    assert isinstance(got, ErrorResponse)
    assert got.error == ErrorType.TASK_STORE_NOT_FOUND
    assert got.detail == {"key": "never/set"}


def test_expires_at_is_stored_as_given(store, ti_id, stored_rows):
    expires_at = datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    store.set(uuid.UUID(ti_id), "k", 1, expires_at)
    (row,) = stored_rows()
    assert row.expires_at == expires_at


def test_expired_key_is_an_error_response(store, ti_id, stored_rows):
    ti = uuid.UUID(ti_id)
    store.set(ti, "old", "stale", datetime.now(UTC) - timedelta(seconds=1))
    store.set(ti, "fresh", "ok", datetime.now(UTC) + timedelta(hours=1))
    assert isinstance(store.get(ti, "old"), ErrorResponse)
    assert store.get(ti, "fresh").value == "ok"
    assert len(stored_rows()) == 2  # gone for readers before cleanup removes the row


def test_overwrite_then_delete(store, ti_id):
    ti = uuid.UUID(ti_id)
    store.set(ti, "spark/job_id", "job-1", None)
    store.set(ti, "spark/job_id", "job-2", None)
    assert store.get(ti, "spark/job_id").value == "job-2"
    assert store.delete(ti, "spark/job_id") == OKResponse(ok=True)
    assert isinstance(store.get(ti, "spark/job_id"), ErrorResponse)
    assert store.delete(ti, "spark/job_id") == OKResponse(ok=True)  # missing key: still fine


def test_clear_only_this_map_index(airflow_client, make_run, stored_rows):
    ids = make_run(tasks=(("mapped", [0, 1]),))
    first, second = ids[("mapped", 0)], ids[("mapped", 1)]
    first_store = airflow_client(first).task_state_store
    second_store = airflow_client(second).task_state_store
    for key in KEYS:
        first_store.set(uuid.UUID(first), key, key, None)
    second_store.set(uuid.UUID(second), "k", "kept", None)
    assert first_store.clear(uuid.UUID(first)) == OKResponse(ok=True)
    assert all(isinstance(first_store.get(uuid.UUID(first), key), ErrorResponse) for key in KEYS)
    assert second_store.get(uuid.UUID(second), "k").value == "kept"
    assert [row.key for row in stored_rows()] == ["k"]


def test_interoperates_with_our_client(store, ti_id, live_server, issue_token):
    ti = uuid.UUID(ti_id)
    store.set(ti, "spark/job_id", {"id": 7}, None)
    with TaskStoreClient(live_server, issue_token(ti_id)) as ours:
        assert ours.get("spark/job_id") == {"id": 7}
        ours.set("ключ/✓", [1, 2.0, "3"])
    assert store.get(ti, "ключ/✓").value == [1, 2.0, "3"]


def test_validation_error_reaches_the_airflow_client(store, ti_id):
    with pytest.raises(ServerResponseError) as caught:
        store.set(uuid.UUID(ti_id), "k" * 513, 1, None)
    assert caught.value.response.status_code == 422
    assert caught.value.detail["reason"] == "validation_error"
    assert "key" in caught.value.detail["message"]


def test_null_value_is_refused(store, ti_id, stored_rows):
    # Airflow's body model allows None; the service does not store it.
    with pytest.raises(ServerResponseError) as caught:
        store.set(uuid.UUID(ti_id), "k", None, None)
    assert caught.value.response.status_code == 422
    assert "value" in caught.value.detail["message"]
    assert stored_rows() == []


def test_other_task_instances_token_is_forbidden(airflow_client, make_run, stored_rows):
    ids = make_run(tasks=(("a", None), ("b", None)))
    store = airflow_client(ids["a"]).task_state_store
    with pytest.raises(ServerResponseError) as caught:
        store.set(uuid.UUID(ids["b"]), "k", 1, None)
    assert caught.value.response.status_code == 403
    assert stored_rows() == []


def test_near_expiry_token_is_swapped_by_the_client(airflow_client, ti_id, issue_token):
    # Issued 9 of its 10 minutes ago: less than a fifth of its lifetime left.
    old = issue_token(ti_id, now=datetime.now(UTC) - timedelta(minutes=9))
    client = airflow_client(ti_id, token=old)
    ti = uuid.UUID(ti_id)
    client.task_state_store.set(ti, "k", "v", None)
    assert isinstance(client.auth, BearerAuth)
    fresh = client.auth.token
    assert fresh != old
    assert client.task_state_store.get(ti, "k").value == "v"  # the fresh token works
    assert client.auth.token == fresh  # and, far from expiry, is not swapped again
