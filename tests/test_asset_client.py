"""Asset keys through real clients against the live server: Airflow's own Task SDK client
(``Client(...).asset_state_store``), unchanged, by name and by URI, and this project's
``TaskStoreClient.asset(...)``. The admin API then shows which task instance wrote each key."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("airflow.sdk", reason="apache-airflow-task-sdk is not installed")

from airflow.sdk.api.client import Client  # noqa: E402
from airflow.sdk.api.datamodels._generated import AssetStateStoreResponse  # noqa: E402
from airflow.sdk.exceptions import ErrorType  # noqa: E402
from airflow.sdk.execution_time.comms import ErrorResponse, OKResponse  # noqa: E402

from webapp.client import NotFoundError, TaskStoreClient  # noqa: E402

NAME = "warehouse/orders ?#ünï"
URI = "postgres://warehouse/public/orders?sslmode=require#x"


@pytest.fixture
def asset_id(live_server, admin_auth):
    created = httpx.post(f"{live_server}/api/v2/assets", headers=admin_auth(), json={"name": NAME, "uri": URI})
    assert created.status_code == 201, created.text
    return created.json()["id"]


@pytest.fixture
def airflow_assets(live_server, make_run, issue_token):
    ids = make_run(tasks=(("load", [0, 1]),))
    ti = ids[("load", 1)]
    client = Client(base_url=live_server + "/execution/", token=issue_token(ti))
    yield client.asset_state_store
    client.close()


@pytest.mark.parametrize("by", ["name", "uri"])
def test_airflows_client_sets_gets_deletes_and_clears_asset_keys(airflow_assets, asset_id, live_server, admin_auth,
                                                                 by):
    named = {by: NAME if by == "name" else URI}
    assert airflow_assets.set("watermark", {"partition": "2026-12-01"}, **named) == OKResponse(ok=True)
    assert airflow_assets.set("offset", 1200, **named) == OKResponse(ok=True)
    got = airflow_assets.get("watermark", **named)
    assert isinstance(got, AssetStateStoreResponse) and got.value == {"partition": "2026-12-01"}
    entry = httpx.get(f"{live_server}/api/v2/assets/{asset_id}/state-store/watermark", headers=admin_auth("viewer"))
    assert entry.json()["last_updated_by"] == {"kind": "task", "dag_id": "dag", "run_id": "run_1", "task_id": "load",
                                               "map_index": 1, "name": None}
    assert airflow_assets.delete("watermark", **named) == OKResponse(ok=True)
    missing = airflow_assets.get("watermark", **named)
    assert isinstance(missing, ErrorResponse) and missing.error == ErrorType.ASSET_STORE_NOT_FOUND
    assert airflow_assets.clear(**named) == OKResponse(ok=True)
    listed = httpx.get(f"{live_server}/api/v2/assets/{asset_id}/state-store", headers=admin_auth("viewer"))
    assert listed.json()["total_entries"] == 0


def test_airflows_client_on_an_unknown_asset_gets_not_found(airflow_assets):
    got = airflow_assets.get("k", name="no such asset")
    assert isinstance(got, ErrorResponse)


def test_our_client_reads_and_writes_asset_keys(live_server, asset_id, make_run, issue_token):
    ti = make_run()["task"]
    with TaskStoreClient(live_server, issue_token(ti)) as store:
        by_name, by_uri = store.asset(name=NAME), store.asset(uri=URI)
        by_name.set("cursor", {"offset": 7})
        assert by_uri.get("cursor") == {"offset": 7}
        assert by_uri.get("nothing", default="fallback") == "fallback"
        by_uri.delete("cursor")
        assert by_name.get("cursor") is None
        by_name.set("a", 1)
        by_name.clear()
        assert by_name.get("a") is None
        with pytest.raises(NotFoundError):
            store.asset(name="no such asset").get("k")
        with pytest.raises(ValueError):
            store.asset(name=NAME, uri=URI)
