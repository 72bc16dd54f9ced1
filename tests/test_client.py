"""The worker-side client: against the live server for behaviour, and
against an ``httpx.MockTransport`` where a failure has to be staged (retries, refresh)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from support import SECRET_KEY, new_uuid
from webapp.client import (
    NEVER_EXPIRE,
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
    TaskStoreClient,
    TaskStoreError,
    TaskStoreHTTPError,
    ValidationError,
)

TOLERANCE = timedelta(seconds=2)


@pytest.fixture
def make_client(live_server, issue_token):
    """A client on the live server for a TI (fast retries, so failures fail quickly)."""
    made: list[TaskStoreClient] = []

    def _make(ti: str, **options) -> TaskStoreClient:
        options.setdefault("retry_wait", 0.01)
        client = TaskStoreClient(options.pop("base_url", live_server), issue_token(ti), **options)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


@pytest.fixture
def store(make_client, ti_id) -> TaskStoreClient:
    return make_client(ti_id)


def rows_for(stored_rows, key):
    return [row for row in stored_rows() if row.key == key]


def mock_client(handler, *, ti: str | None = None, **options) -> TaskStoreClient:
    """A client whose requests go to ``handler`` instead of the network."""
    ti = ti or new_uuid()
    options.setdefault("retry_wait", 0.001)
    options.setdefault("retry_wait_max", 0.005)
    token = jwt.encode({"sub": ti}, SECRET_KEY, algorithm="HS256")
    return TaskStoreClient("http://taskstore.test", token, transport=httpx.MockTransport(handler), **options)


# --- round trips ------------------------------------------------------------------------------

JSON_VALUES = [
    "text",
    "",
    "ünïcødé ✓ 🚀",
    "3",
    0,
    3,
    -17,
    2**63 + 1,
    1.5,
    3.0,
    -2.5e-10,
    True,
    False,
    [],
    {},
    [1, "x", None, {"a": []}],
    {"nested": {"list": [1, 2.5, None, True], "empty": {}}, "ключ": "значение"},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_set_get_round_trip_keeps_value_and_type(store, value):
    store.set("k", value)
    got = store.get("k")
    assert got == value
    assert type(got) is type(value)
    assert json.dumps(got) == json.dumps(value)


@pytest.mark.parametrize(
    "key",
    ["spark/job_id", "a/b/c/", "/leading", "/", "//", "a//b", ".", "..", "../x", "./", "ключ/✓ 🚀",
     "spaces and ?query=1#frag", "100%", "+plus&amp", "~tilde"],
)
def test_keys_with_reserved_and_unicode_characters(store, stored_rows, key):
    store.set(key, {"key": key})
    assert store.get(key) == {"key": key}
    assert [row.key for row in stored_rows()] == [key]
    store.delete(key)
    assert store.get(key) is None


def test_a_redirect_is_never_taken_for_success():
    moved = httpx.Response(308, headers={"Location": "http://elsewhere.test/"})
    with pytest.raises(TaskStoreHTTPError) as caught:
        mock_client(lambda request: moved).set("k", 1)
    assert caught.value.status == 308 and "elsewhere.test" in caught.value.message


def test_get_missing_key_returns_default(store):
    assert store.get("missing") is None
    assert store.get("missing", default=7) == 7
    assert store.get("missing", {"d": 1}) == {"d": 1}


def test_get_for_unknown_task_instance_raises(make_client):
    ghost = new_uuid()  # a validly signed token for a TI that does not exist
    client = make_client(ghost)
    with pytest.raises(NotFoundError) as caught:
        client.get("k", default="never returned")
    assert caught.value.status == 404
    assert caught.value.message == f"Task instance {ghost} not found"


def test_ti_id_comes_from_the_token_or_is_given(make_client, make_run, issue_token, live_server):
    ids = make_run(tasks=(("a", None), ("b", None)))
    from_token = make_client(ids["a"])
    assert from_token.ti_id == ids["a"]
    explicit = TaskStoreClient(live_server, issue_token(ids["b"]), ti_id=ids["b"])
    with explicit:
        explicit.set("k", 1)
        assert explicit.get("k") == 1
    assert from_token.get("k") is None


def test_token_without_subject_needs_explicit_ti_id():
    with pytest.raises(ValueError, match="ti_id"):
        TaskStoreClient("http://taskstore.test", "not-a-jwt")
    with pytest.raises(ValueError, match="sub"):
        TaskStoreClient("http://taskstore.test", jwt.encode({"x": 1}, SECRET_KEY, algorithm="HS256"))


@pytest.mark.parametrize("suffix", ["", "/", "/execution", "/execution/"])
def test_base_url_may_include_execution(make_client, ti_id, live_server, suffix):
    client = make_client(ti_id, base_url=live_server + suffix)
    client.set("k", suffix)
    assert client.get("k") == suffix


# --- set(None) ------------------------------------------------------------------------------


def test_set_none_raises_before_any_request(store, stored_rows):
    sent = []
    offline = mock_client(lambda request: sent.append(request) or httpx.Response(204))
    with pytest.raises(ValueError, match="None"):
        offline.set("k", None)
    assert sent == []
    with pytest.raises(ValueError):
        store.set("k", None)
    assert stored_rows() == []


def test_set_nan_raises_before_any_request():
    sent = []
    offline = mock_client(lambda request: sent.append(request) or httpx.Response(204))
    with pytest.raises(ValueError):
        offline.set("k", float("nan"))
    with pytest.raises(ValueError):
        offline.set("k", [float("inf")])
    assert sent == []


# --- retention ------------------------------------------------------------------------------


def test_retention_timedelta_stores_now_plus_retention(store, stored_rows):
    before = datetime.now(UTC)
    store.set("k", 1, retention=timedelta(hours=2))
    after = datetime.now(UTC)
    (row,) = rows_for(stored_rows, "k")
    assert before + timedelta(hours=2) - TOLERANCE <= row.expires_at <= after + timedelta(hours=2) + TOLERANCE


def test_never_expire_stores_null(store, stored_rows):
    store.set("k", 1, retention=NEVER_EXPIRE)
    (row,) = rows_for(stored_rows, "k")
    assert row.expires_at is None
    assert repr(NEVER_EXPIRE) == "NEVER_EXPIRE"


@pytest.mark.parametrize("days", [30, 1])
def test_no_retention_uses_default_retention_days(make_client, ti_id, stored_rows, days):
    client = make_client(ti_id, default_retention_days=days)
    before = datetime.now(UTC)
    client.set("k", 1)
    after = datetime.now(UTC)
    (row,) = rows_for(stored_rows, "k")
    assert before + timedelta(days=days) - TOLERANCE <= row.expires_at <= after + timedelta(days=days) + TOLERANCE


def test_default_retention_zero_means_never(make_client, ti_id, stored_rows):
    make_client(ti_id, default_retention_days=0).set("k", 1)
    (row,) = rows_for(stored_rows, "k")
    assert row.expires_at is None


def test_overwrite_replaces_expiry(store, stored_rows):
    store.set("k", 1, retention=timedelta(minutes=5))
    store.set("k", 2, retention=NEVER_EXPIRE)
    (row,) = rows_for(stored_rows, "k")
    assert (json.loads(row.value), row.expires_at, row.version) == (2, None, 2)


def test_expired_key_reads_as_missing(store, stored_rows):
    store.set("k", "gone", retention=timedelta(seconds=-1))
    assert len(rows_for(stored_rows, "k")) == 1  # still in the table until cleanup...
    assert store.get("k", "default") == "default"  # ...but gone for readers


def test_bad_retention_arguments():
    offline = mock_client(lambda request: httpx.Response(204))
    with pytest.raises(TypeError):
        offline.set("k", 1, retention=30)
    with pytest.raises(ValueError):
        mock_client(lambda request: httpx.Response(204), default_retention_days=-1)


# --- delete and clear -----------------------------------------------------------------------


def test_delete(store):
    store.set("k", 1)
    store.set("other", 2)
    store.delete("k")
    assert store.get("k") is None
    assert store.get("other") == 2
    store.delete("k")  # deleting a missing key is fine


def test_clear_removes_only_this_task_instance(make_client, make_run, stored_rows):
    ids = make_run(tasks=(("mapped", [0, 1]), ("plain", None)))
    mine = make_client(ids[("mapped", 0)])
    sibling = make_client(ids[("mapped", 1)])
    other = make_client(ids["plain"])
    for client in (mine, sibling, other):
        client.set("a", 1)
        client.set("b/c", 2)
    mine.clear()
    assert mine.get("a") is None and mine.get("b/c") is None
    assert sibling.get("a") == 1 and other.get("b/c") == 2
    assert len(stored_rows()) == 4
    mine.clear()  # clearing an empty store is fine


# --- errors ---------------------------------------------------------------------------------


def test_too_long_key_raises_validation_error_with_server_message(store, stored_rows):
    with pytest.raises(ValidationError) as caught:
        store.set("k" * 513, 1)
    error = caught.value
    assert (error.status, error.reason) == (422, "validation_error")
    assert "key" in error.message and "513" in error.message
    assert isinstance(error, TaskStoreHTTPError) and isinstance(error, TaskStoreError)
    assert stored_rows() == []


def test_control_character_in_key_raises_validation_error(store):
    with pytest.raises(ValidationError, match="control character"):
        store.get("bad\x01key")


def test_another_task_instances_token_is_forbidden(make_run, issue_token, live_server, stored_rows):
    ids = make_run(tasks=(("a", None), ("b", None)))
    with TaskStoreClient(live_server, issue_token(ids["a"]), ti_id=ids["b"], retry_wait=0.01) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            client.set("k", 1)
        assert caught.value.status == 403
        assert "task instance" in caught.value.message.lower()
        with pytest.raises(PermissionDeniedError):
            client.get("k")
    assert stored_rows() == []


def test_bad_token_raises_authentication_error(live_server, ti_id):
    forged = jwt.encode({"sub": ti_id}, "a-different-secret-" + "y" * 30, algorithm="HS256")
    with TaskStoreClient(live_server, forged) as client:
        with pytest.raises(AuthenticationError) as caught:
            client.get("k")
    assert caught.value.status == 401
    assert "token" in caught.value.message.lower()


def test_expired_token_raises_authentication_error(live_server, ti_id, issue_token):
    stale = issue_token(ti_id, now=datetime.now(UTC) - timedelta(hours=1))
    with TaskStoreClient(live_server, stale) as client:
        with pytest.raises(AuthenticationError, match="expired"):
            client.set("k", 1)


def test_oversized_body_raises_payload_too_large(store, stored_rows):
    with pytest.raises(PayloadTooLargeError) as caught:
        store.set("k", "x" * (1024 * 1024 + 1))
    assert caught.value.status == 413
    assert "limit" in caught.value.message
    assert stored_rows() == []


def test_4xx_is_never_retried():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(422, json={"detail": {"reason": "validation_error", "message": "value: nope"}})

    with pytest.raises(ValidationError, match="value: nope"):
        mock_client(handler, retries=5).set("k", 1)
    assert len(calls) == 1


def test_error_without_the_services_body_still_has_a_message():
    client = mock_client(lambda request: httpx.Response(409, text="conflict from a proxy"))
    with pytest.raises(TaskStoreHTTPError) as caught:
        client.delete("k")
    assert type(caught.value) is TaskStoreHTTPError
    assert caught.value.status == 409 and caught.value.message == "conflict from a proxy"


def test_a_404_that_is_not_a_missing_key_raises():
    """A wrong URL must not read as "nothing stored yet"."""
    page = {"detail": {"reason": "not_found", "message": "The requested URL was not found on the server."}}
    client = mock_client(lambda request: httpx.Response(404, json=page))
    with pytest.raises(NotFoundError, match="requested URL"):
        client.get("k")


# --- retries --------------------------------------------------------------------------------


def test_5xx_is_retried_until_success():
    answers = iter([503, 503, 204])
    calls = []

    def handler(request):
        calls.append(request)
        status = next(answers)
        if status == 503:
            return httpx.Response(503, json={"detail": {"reason": "database_unavailable", "message": "busy"}})
        return httpx.Response(status)

    mock_client(handler, retries=5).set("k", {"v": 1})
    assert len(calls) == 3
    assert {request.content for request in calls} == {calls[0].content}  # the same body each time
    assert {request.headers["Content-Type"] for request in calls} == {"application/json"}
    assert json.loads(calls[0].content)["value"] == {"v": 1}


def test_5xx_forever_raises_service_unavailable_after_n_attempts():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, json={"detail": {"reason": "database_unavailable", "message": "db is down"}})

    with pytest.raises(ServiceUnavailableError) as caught:
        mock_client(handler, retries=4).get("k")
    assert len(calls) == 4
    error = caught.value
    assert (error.status, error.attempts) == (503, 4)
    assert "db is down" in error.message
    assert isinstance(error, TaskStoreError) and not isinstance(error, TaskStoreHTTPError)


def test_connection_errors_are_retried():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("connection reset", request=request)
        return httpx.Response(200, json={"value": 42})

    assert mock_client(handler).get("k") == 42
    assert len(calls) == 3


def test_connection_refused_raises_service_unavailable(ti_id):
    with socket.socket() as sock:  # a port that nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = jwt.encode({"sub": ti_id}, SECRET_KEY, algorithm="HS256")
    with TaskStoreClient(f"http://127.0.0.1:{port}", token, retries=3, retry_wait=0.001) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            client.set("k", 1)
    assert caught.value.status is None and caught.value.attempts == 3
    assert "ConnectError" in caught.value.message


# --- token refresh --------------------------------------------------------------------------


def test_refreshed_token_is_used_for_the_next_request():
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        if len(seen) == 1:
            return httpx.Response(204, headers={"Refreshed-API-Token": "fresh-token"})
        return httpx.Response(204)

    client = mock_client(handler)
    original = client.token
    client.set("k", 1)
    client.delete("k")
    assert seen == [f"Bearer {original}", "Bearer fresh-token"]
    assert client.token == "fresh-token"


def test_refreshed_token_is_used_by_a_retry():
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        if len(seen) == 1:
            return httpx.Response(503, headers={"Refreshed-API-Token": "fresh-token"})
        return httpx.Response(204)

    client = mock_client(handler)
    client.clear()
    assert seen[1] == "Bearer fresh-token"


def test_near_expiry_token_is_swapped_by_the_live_server(live_server, ti_id, issue_token):
    # Issued 9 of its 10 minutes ago: under a fifth of its lifetime left.
    old = issue_token(ti_id, now=datetime.now(UTC) - timedelta(minutes=9))
    with TaskStoreClient(live_server, old) as client:
        client.set("k", "v")
        assert client.token != old
        assert jwt.decode(client.token, options={"verify_signature": False})["sub"] == ti_id
        fresh_token = client.token
        assert client.get("k") == "v"  # the fresh token works...
        assert client.token == fresh_token  # ...and is not refreshed again


def test_context_manager_closes_the_connection(live_server, ti_id, issue_token):
    with TaskStoreClient(live_server, issue_token(ti_id)) as client:
        client.set("k", 1)
    with pytest.raises(RuntimeError):
        client.get("k")
