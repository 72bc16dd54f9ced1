"""The three ways in from Airflow (README, "Using it with Airflow"), against the live server:

- ``webapp.integrations.airflow.TaskStoreBackend``, Airflow 3.3's ``BaseStoreBackend``, called
  directly with Airflow's own ``TaskScope`` / ``AssetScope``: values round-trip byte for byte,
  ``expires_at`` passes through, clear honours ``all_map_indices``, sync and async. These run
  in every pass of the suite (SQLite, PostgreSQL, MariaDB): they are the backend's round trip.
- the in-task accessor (``webapp.integrations.accessor.TaskStateStore``), with and without Airflow;
- settings: a missing or bad setting names itself; what importing the backend loads.

Airflow's own execution API using the backend, and a real DAG retrying through the accessor
with the listener plugin installed, are in tests/test_airflow_end_to_end.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import TaskState

pytest.importorskip("airflow.state", reason="apache-airflow-core 3.3 is not installed")

from airflow.state import AssetScope, TaskScope  # noqa: E402

from webapp.client import NotFoundError, ServiceUnavailableError  # noqa: E402
from webapp.integrations.accessor import NEVER_EXPIRE, TaskStateStore  # noqa: E402
from webapp.integrations.airflow import TaskStoreBackend, UnknownAssetError  # noqa: E402
from webapp.integrations.service_client import (  # noqa: E402
    ServiceSettings,
    TaskStoreConfigurationError,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent
# Odd spacing, a float that JSON would print differently, escapes and non-ASCII: only a store
# that keeps the text itself gives it back unchanged.
ODD = '{"a": [1, 2.0 ,  1e3],   "b":"x" ,"\\u00fc": "✓ \\"q\\"", "n" :null}'
TOLERANCE = timedelta(seconds=1)

# Tests whose result does not depend on the test database run in the SQLite pass only (as in
# tests/test_faults.py); the rest run in every pass.
ONE_PASS = pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                              reason="does not depend on the test database: runs in the SQLite pass")


@pytest.fixture
def backend(live_server, service_key):
    made = TaskStoreBackend(url=live_server, api_key=service_key, retry_wait=0.01)
    yield made
    made.client.close()


def task_entries(admin_get, dag="d", run="r", task="t", map_index=-1) -> dict[str, dict]:
    listed = admin_get(f"/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/state-store", map_index=map_index)
    return {entry["key"]: entry for entry in listed["task_state_store"]}


def stored_text(app, key: str) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(TaskState.value).where(TaskState.key == key)).scalars())


def asset_named(admin_get, name: str) -> dict:
    (found,) = [asset for asset in admin_get("/api/v2/assets")["assets"] if asset["name"] == name]
    return found


# --- a. the backend, called as Airflow's execution API calls it ------------------------------


def test_task_keys_round_trip_byte_for_byte_with_their_expiry(backend, admin_get, app):
    scope = TaskScope("d", "r", "t", -1)
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    backend.set(scope, "spark/job id", ODD, expires_at=expires_at)
    backend.set(scope, "forever", '"kept"', expires_at=None)

    assert backend.get(scope, "spark/job id") == ODD  # the very text, not an equal JSON value
    assert stored_text(app, "spark/job id") == [ODD]
    entries = task_entries(admin_get)
    assert entries["spark/job id"]["value"] == json.loads(ODD)
    assert datetime.fromisoformat(entries["spark/job id"]["expires_at"]) == expires_at
    assert entries["forever"]["expires_at"] is None  # None: never expires, as Airflow means it

    backend.set(scope, "spark/job id", '"replaced"', expires_at=expires_at + timedelta(days=1))
    assert backend.get(scope, "spark/job id") == '"replaced"'
    backend.delete(scope, "spark/job id")
    backend.delete(scope, "spark/job id")  # deleting what is not there is fine
    assert backend.get(scope, "spark/job id") is None
    assert backend.get(TaskScope("d", "r", "never-ran"), "k") is None  # an unknown task instance: no key
    assert list(task_entries(admin_get)) == ["forever"]


def test_a_write_already_expired_leaves_no_key(backend, admin_get):
    scope = TaskScope("d", "r", "t")
    backend.set(scope, "k", "1")
    backend.set(scope, "k", "2", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert backend.get(scope, "k") is None


def test_clear_takes_one_map_index_unless_all_map_indices(backend, admin_get):
    first, second = TaskScope("d", "r", "mapped", 0), TaskScope("d", "r", "mapped", 1)
    for scope in (first, second):
        backend.set(scope, "progress", json.dumps({"map_index": scope.map_index}))
    assert backend.get(second, "progress") == '{"map_index": 1}'

    backend.clear(first)
    assert backend.get(first, "progress") is None
    assert backend.get(second, "progress") == '{"map_index": 1}'  # another map index keeps its keys

    backend.set(first, "progress", '"again"')
    backend.clear(first, all_map_indices=True)
    assert backend.get(first, "progress") is None and backend.get(second, "progress") is None
    assert task_entries(admin_get, task="mapped", map_index=1) == {}


def test_asset_keys_by_name_and_by_uri(backend, admin_get):
    by_name = AssetScope(name="warehouse.orders")
    backend.set(by_name, "watermark", ODD)
    assert backend.get(by_name, "watermark") == ODD
    assert asset_named(admin_get, "warehouse.orders")["key_count"] == 1

    # A write naming both registers the asset with both; either then finds it.
    both = AssetScope(name="s3-orders", uri="s3://bucket/orders/")
    backend.set(both, "offset", "42", expires_at=datetime.now(UTC) + timedelta(days=1))  # asset keys never expire
    assert backend.get(AssetScope(uri="s3://bucket/orders/"), "offset") == "42"
    assert asset_named(admin_get, "s3-orders")["uri"] == "s3://bucket/orders/"

    by_uri = AssetScope(uri="postgres://db/public/events")
    backend.set(by_uri, "last", '["a",  "b"]')
    assert backend.get(by_uri, "last") == '["a",  "b"]'

    backend.delete(by_name, "watermark")
    assert backend.get(by_name, "watermark") is None
    backend.clear(AssetScope(uri="s3://bucket/orders/"))
    assert backend.get(both, "offset") is None
    assert backend.get(AssetScope(name="never-registered"), "k") is None


def test_async_methods_do_the_same(backend, admin_get):
    task, other_index = TaskScope("d", "r", "t", 0), TaskScope("d", "r", "t", 1)
    asset = AssetScope(name="async.asset", uri="file:///tmp/async")
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)

    async def scenario() -> dict:
        seen = {}
        await backend.aset(task, "k", ODD, expires_at=expires_at)
        await backend.aset(other_index, "k", "1")
        seen["task"] = await backend.aget(task, "k")
        await backend.aset(asset, "w", '{"x" : 1}')
        seen["asset"] = await backend.aget(AssetScope(uri="file:///tmp/async"), "w")
        # Both in flight at once: neither waits for the other on the event loop.
        seen["together"] = await asyncio.gather(backend.aget(task, "k"), backend.aget(asset, "w"))
        await backend.adelete(asset, "w")
        seen["deleted"] = await backend.aget(asset, "w")
        await backend.aclear(task)
        seen["cleared"] = (await backend.aget(task, "k"), await backend.aget(other_index, "k"))
        await backend.aclear(task, all_map_indices=True)
        seen["all"] = await backend.aget(other_index, "k")
        await backend.aset(asset, "w", "2")
        await backend.aclear(asset)
        seen["asset_cleared"] = await backend.aget(asset, "w")
        return seen

    seen = asyncio.run(scenario())
    assert seen["task"] == ODD and seen["asset"] == '{"x" : 1}'
    assert seen["together"] == [ODD, '{"x" : 1}']
    assert seen["deleted"] is None
    assert seen["cleared"] == (None, "1") and seen["all"] is None and seen["asset_cleared"] is None
    # and a second event loop (a new asyncio.run) works too
    assert asyncio.run(backend.aget(task, "k")) is None


@ONE_PASS
def test_the_async_methods_leave_the_event_loop_running_while_they_wait():
    import httpx

    from webapp.integrations.service_client import ServiceClient

    async def slow_service(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)  # a slow answer: the loop must keep serving others meanwhile
        return httpx.Response(200, content=b'{"slow": true}')

    client = ServiceClient(ServiceSettings("http://taskstore.test", "k"),
                           async_transport=httpx.MockTransport(slow_service))
    backend = TaskStoreBackend(client=client)

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        value = await backend.aget(TaskScope("d", "r", "t"), "k")
        ticking.cancel()
        return value, ticks

    value, ticks = asyncio.run(scenario())
    assert value == '{"slow": true}' and ticks >= 10


class FakeAssetRow:
    def __init__(self, name, uri):
        self.name, self.uri = name, uri


class FakeSession:
    """Stands in for the session Airflow's execution API passes: ``get(AssetModel, id)``."""

    def __init__(self, rows):
        self.rows, self.asked = rows, []

    def get(self, model, asset_id):
        self.asked.append((model.__name__, asset_id))
        return self.rows.get(asset_id)


class FakeAsyncSession(FakeSession):
    async def get(self, model, asset_id):
        return FakeSession.get(self, model, asset_id)


def test_an_asset_id_is_resolved_through_the_session_airflow_passes(backend, admin_get):
    session = FakeSession({7: FakeAssetRow("warehouse.orders", "postgres://warehouse/public/orders")})
    backend.set(AssetScope(asset_id=7), "watermark", '"2026-12-01"', session=session)
    assert session.asked == [("AssetModel", 7)]
    assert backend.get(AssetScope(name="warehouse.orders"), "watermark") == '"2026-12-01"'
    assert asset_named(admin_get, "warehouse.orders")["uri"] == "postgres://warehouse/public/orders"
    assert backend.get(AssetScope(asset_id=7), "watermark", session=session) == '"2026-12-01"'
    assert session.asked == [("AssetModel", 7)]  # an id names one asset for good: asked once

    async_session = FakeAsyncSession({8: FakeAssetRow("eight", "file:///eight")})
    asyncio.run(backend.aset(AssetScope(asset_id=8), "k", "8", session=async_session))
    assert backend.get(AssetScope(uri="file:///eight"), "k") == "8"
    with pytest.raises(UnknownAssetError, match="no asset with id 9"):
        backend.get(AssetScope(asset_id=9), "k", session=FakeSession({}))


def test_a_refused_write_raises_a_typed_error(backend):
    from webapp.client import ValidationError

    with pytest.raises(ValidationError) as refused:
        backend.set(TaskScope("d", "r", "t"), "k", "not json")
    assert refused.value.status == 422 and refused.value.field == "value_json"


# --- b. the in-task accessor --------------------------------------------------------------------


class FakeTI:
    def __init__(self, dag_id, run_id, task_id, map_index, try_number=1):
        self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number = (
            dag_id, run_id, task_id, map_index, try_number)


def test_the_accessor_from_a_context_shares_keys_across_tries(live_server, service_key, admin_get):
    options = {"url": live_server, "api_key": service_key}
    with TaskStateStore.from_context({"ti": FakeTI("etl", "manual__1", "copy", 2, try_number=1)}, **options) as first:
        assert first.get("done", default=0) == 0
        first.set("done", 17)
        first.set("job", {"id": "application_42"}, retention=timedelta(hours=2))
        first.set("schema", [3], retention=NEVER_EXPIRE)
        first.set("airflow-never", "x", retention=timedelta.max)  # Airflow's NEVER_EXPIRE is timedelta.max
    retry = TaskStateStore.from_context({"ti": FakeTI("etl", "manual__1", "copy", 2, try_number=2)}, **options)
    assert retry.get("done") == 17 and retry.get("job") == {"id": "application_42"}

    entries = task_entries(admin_get, dag="etl", run="manual__1", task="copy", map_index=2)
    now = datetime.now(UTC)
    assert abs(datetime.fromisoformat(entries["job"]["expires_at"]) - (now + timedelta(hours=2))) < TOLERANCE
    # None: the server's configured default retention (30 days here), not a client-side constant
    assert abs(datetime.fromisoformat(entries["done"]["expires_at"]) - (now + timedelta(days=30))) < TOLERANCE
    assert entries["schema"]["expires_at"] is None and entries["airflow-never"]["expires_at"] is None

    retry.delete("done")
    assert retry.get("done", default="gone") == "gone"
    other_index = TaskStateStore("etl", "manual__1", "copy", 3, **options)
    other_index.set("done", 1)
    retry.clear()
    assert retry.get("job") is None and other_index.get("done") == 1  # its own map index only

    async def async_use():
        async with TaskStateStore("etl", "manual__1", "copy", 2, **options) as store:
            await store.aset("a", {"n": 1}, retention=timedelta(minutes=5))
            got = await store.aget("a")
            await store.adelete("a")
            gone = await store.aget("a", default="none")
            await store.aset("b", 2)
            await store.aclear()
            return got, gone, await store.aget("b")

    assert asyncio.run(async_use()) == ({"n": 1}, "none", None)
    retry.close()
    other_index.close()


def test_the_accessor_refuses_what_airflow_refuses(live_server, service_key):
    store = TaskStateStore("d", "r", "t", url=live_server, api_key=service_key)
    with pytest.raises(ValueError, match="None"):
        store.set("k", None)
    with pytest.raises(ValueError):
        store.set("k", float("nan"))
    with pytest.raises(TypeError, match="retention"):
        store.set("k", 1, retention=3600)
    with pytest.raises(ValueError, match="positive"):
        store.set("k", 1, retention=timedelta(0))
    asset = store.asset(name="accessor.asset")
    asset.set("w", {"v": 1})
    assert asset.get("w") == {"v": 1} and asset.get("missing", default=0) == 0
    asset.clear()
    assert asset.get("w") is None
    store.close()


def test_the_accessor_works_without_airflow_from_the_environment(live_server, service_key):
    probe = (
        "import sys; sys.modules['airflow'] = None  # as if Airflow were not installed\n"
        "from webapp.integrations.accessor import TaskStateStore\n"
        "store = TaskStateStore('plain', 'run-1', 'worker')\n"
        "store.set('k', {'from': 'env'})\n"
        "print(store.get('k'), store.client.settings.timeout, store.client.settings.retries)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy')))\n"
    )
    env = {**os.environ, "AIRFLOW__TASKSTORE__URL": live_server, "AIRFLOW__TASKSTORE__API_KEY": service_key,
           "AIRFLOW__TASKSTORE__TIMEOUT": "3.5", "AIRFLOW__TASKSTORE__RETRIES": "2"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["{'from': 'env'} 3.5 2", "[]"]


# --- the worker client's async methods (for async tasks and triggers on any worker) -------------


def test_the_worker_clients_async_methods_round_trip(live_server, issue_token, ti_id, stored_rows):
    from webapp.client import TaskStoreClient

    async def scenario():
        async with TaskStoreClient(live_server, issue_token(ti_id), retry_wait=0.01) as store:
            await store.aset("spark/job id", {"app": "application_42"}, retention=timedelta(hours=1))
            await store.aset("forever", [1, 2.5], retention=NEVER_EXPIRE)
            got = await asyncio.gather(store.aget("spark/job id"), store.aget("forever"), store.aget("nope", 7))
            await store.adelete("spark/job id")
            after_delete = await store.aget("spark/job id", default="gone")
            orders = store.asset(name="orders.async")
            with pytest.raises(NotFoundError):  # an unknown asset is not a missing key
                await orders.aget("watermark")
            await store.aclear()
            return got, after_delete, await store.aget("forever")

    got, after_delete, after_clear = asyncio.run(scenario())
    assert got == [{"app": "application_42"}, [1, 2.5], 7]
    assert after_delete == "gone" and after_clear is None and stored_rows() == []


@ONE_PASS
def test_the_worker_clients_async_methods_retry_and_take_a_refreshed_token():
    import httpx
    import jwt

    from support import SECRET_KEY, new_uuid
    from webapp.client import TaskStoreClient

    seen: list[tuple[str, str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers["Authorization"]))
        if len(seen) == 1:
            return httpx.Response(503, json={"detail": {"reason": "unavailable", "message": "locked"}},
                                  headers={"Refreshed-API-Token": "fresh"})
        if len(seen) == 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"value": {"ok": True}})

    token = jwt.encode({"sub": new_uuid()}, SECRET_KEY, algorithm="HS256")
    store = TaskStoreClient("http://taskstore.test", token, retry_wait=0.001, retry_wait_max=0.005,
                            async_transport=httpx.MockTransport(handler))
    assert asyncio.run(store.aget("k")) == {"ok": True}
    assert seen == [("GET", f"Bearer {token}"), ("GET", "Bearer fresh"), ("GET", "Bearer fresh")]
    assert store.token == "fresh"

    async def always_down(request):
        return httpx.Response(500, text="boom")

    down = TaskStoreClient("http://taskstore.test", token, retries=2, retry_wait=0.001,
                           async_transport=httpx.MockTransport(always_down))
    with pytest.raises(ServiceUnavailableError) as failed:
        asyncio.run(down.aset("k", 1))
    assert failed.value.attempts == 2 and failed.value.status == 500


# --- settings ---------------------------------------------------------------------------------


@ONE_PASS
def test_a_missing_url_names_the_setting(monkeypatch):
    monkeypatch.delenv("AIRFLOW__TASKSTORE__URL", raising=False)
    monkeypatch.setenv("AIRFLOW__TASKSTORE__API_KEY", "some-key")
    with pytest.raises(TaskStoreConfigurationError) as missing:
        TaskStoreBackend()  # as Airflow builds it: settings from Airflow's configuration
    message = str(missing.value)
    assert "[taskstore] url" in message and "AIRFLOW__TASKSTORE__URL" in message
    with pytest.raises(TaskStoreConfigurationError, match=r"\[taskstore\] url / AIRFLOW__TASKSTORE__URL"):
        TaskStateStore("d", "r", "t")  # the accessor, the same way
    monkeypatch.delenv("AIRFLOW__TASKSTORE__API_KEY")
    with pytest.raises(TaskStoreConfigurationError, match="api-keys create airflow --role service"):
        TaskStateStore("d", "r", "t", url="http://taskstore:8080")


@ONE_PASS
@pytest.mark.parametrize(("variable", "value", "named"), [
    ("URL", "taskstore:8080", "[taskstore] url"),
    ("API_KEY", "", "[taskstore] api_key"),
    ("TIMEOUT", "soon", "[taskstore] timeout"),
    ("TIMEOUT", "0", "[taskstore] timeout"),
    ("RETRIES", "0", "[taskstore] retries"),
])
def test_a_bad_setting_names_itself(monkeypatch, variable, value, named):
    monkeypatch.setenv("AIRFLOW__TASKSTORE__URL", "http://taskstore:8080")
    monkeypatch.setenv("AIRFLOW__TASKSTORE__API_KEY", "some-key")
    monkeypatch.setenv(f"AIRFLOW__TASKSTORE__{variable}", value)
    with pytest.raises(TaskStoreConfigurationError) as bad:
        TaskStoreBackend()
    assert named in str(bad.value) and f"AIRFLOW__TASKSTORE__{named.split()[1].upper()}" in str(bad.value)


@ONE_PASS
def test_settings_come_from_airflows_configuration(monkeypatch):
    monkeypatch.setenv("AIRFLOW__TASKSTORE__URL", "https://taskstore.internal:8443/")
    monkeypatch.setenv("AIRFLOW__TASKSTORE__API_KEY", "k")
    monkeypatch.setenv("AIRFLOW__TASKSTORE__TIMEOUT", "2.5")
    backend = TaskStoreBackend()
    assert backend.client.settings == ServiceSettings("https://taskstore.internal:8443", "k", timeout=2.5)
    assert load_settings(url="http://other:1", conf=None).url == "http://other:1"  # explicit wins


@ONE_PASS
def test_an_unreachable_service_is_retried_then_reported(monkeypatch):
    from support import free_port

    backend = TaskStoreBackend(url=f"http://127.0.0.1:{free_port()}", api_key="k", retries=3, retry_wait=0.01)
    with pytest.raises(ServiceUnavailableError) as down:
        backend.get(TaskScope("d", "r", "t"), "k")
    assert down.value.attempts == 3 and down.value.status is None
    with pytest.raises(ServiceUnavailableError):
        asyncio.run(backend.aget(TaskScope("d", "r", "t"), "k"))


def test_a_wrong_key_is_an_authentication_error(live_server):
    from webapp.client import AuthenticationError

    backend = TaskStoreBackend(url=live_server, api_key="not-a-key")
    with pytest.raises(AuthenticationError):
        backend.set(TaskScope("d", "r", "t"), "k", "1")
    with pytest.raises(AuthenticationError):
        backend.get(TaskScope("d", "r", "t"), "k")  # not mistaken for "no such key"


# --- what importing the backend loads ------------------------------------------------------------

SERVICE_MODULES = ("flask", "werkzeug", "flask_sqlalchemy", "webapp.app", "webapp.models", "webapp.store",
                   "webapp.extensions", "webapp.api", "webapp.ui", "webapp.runs", "webapp.database")


def _modules_after(code: str, env: dict | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@ONE_PASS
def test_importing_the_backend_loads_nothing_of_the_service_and_no_sqlalchemy_of_its_own(tmp_path):
    # With Airflow: Airflow's own import loads SQLAlchemy (its metadata database); the backend
    # adds no SQLAlchemy module to what Airflow loaded, and nothing of the service.
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow-home")}
    added = _modules_after(
        "import json, sys; import airflow.state; before = set(sys.modules)\n"
        "import webapp.integrations.airflow\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before)))", env)
    assert [m for m in added if m.split(".")[0] in ("sqlalchemy", "flask", "werkzeug", "flask_sqlalchemy")] == []
    assert [m for m in added if m.startswith(SERVICE_MODULES)] == []
    assert "webapp.integrations.service_client" in added

    # With a stand-in for airflow.state (the same classes, nothing else): the backend module
    # itself imports neither Flask nor SQLAlchemy nor the service.
    fake = tmp_path / "fake" / "airflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    shared = Path(__import__("airflow._shared.state", fromlist=["x"]).__file__).read_text()
    (fake / "state.py").write_text(shared)
    loaded = _modules_after(
        f"import json, sys; sys.path.insert(0, {str(fake.parent)!r})\n"
        "import webapp.integrations.airflow, webapp.integrations.accessor, webapp.integrations.airflow_listener\n"
        "assert sys.modules['airflow'].__file__.startswith(sys.path[0])\n"
        "print(json.dumps(sorted(sys.modules)))")
    assert [m for m in loaded if m.split(".")[0] in ("sqlalchemy", "flask", "werkzeug", "pydantic")] == []
    assert [m for m in loaded if m.startswith(SERVICE_MODULES)] == []
