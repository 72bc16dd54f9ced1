"""Assets and their keys through the APIs: registration, listings, the worker API (by name and
by URI, as Airflow's execution API), the admin API's versioned edits, who wrote each key, the
history, declared-asset access, and bad input that writes nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from webapp import assets as asset_registry
from webapp.extensions import db
from webapp.models import AssetState, KeyChange

API = "/api/v2"
WORKER = "/execution/store/asset"
# Names and URIs hold what a path would mangle; this is why they travel in the query string.
NAME = "s3://lake/raw/events 2026?part=1#ünïcødé/✓"
URI = "s3://lake/raw/events/"


@pytest.fixture
def asset(app):
    with app.app_context():
        created = asset_registry.create(NAME, URI, "lake")
        db.session.commit()
        return created.id


@pytest.fixture
def asset_rows(app):
    def _rows():
        with app.app_context():
            return db.session.execute(
                select(AssetState.key, AssetState.value, AssetState.written_by_kind, AssetState.written_by_task_id,
                       AssetState.written_by_name).order_by(AssetState.key)).all()
    return _rows


def worker(client, method: str, headers: dict, by: str = "name", op: str = "value", body=None, **query):
    query.setdefault(by, NAME if by == "name" else URI)
    return client.open(f"{WORKER}/by-{by}/{op}", method=method, headers=headers, query_string=query,
                       data=None if body is None else json.dumps(body))


# --- registration -------------------------------------------------------------------------------


def test_register_list_get_and_delete_an_asset(client, admin_auth, asset_rows, ti_id, worker_auth):
    admin = admin_auth("admin")
    created = client.post(f"{API}/assets", headers=admin, json={"name": "orders", "uri": "s3://orders"})
    assert created.status_code == 201
    body = created.get_json()
    assert {key: body[key] for key in ("name", "uri", "group")} == {"name": "orders", "uri": "s3://orders", "group": ""}
    assert body["id"] and body["created_at"]
    for clash in ({"name": "orders", "uri": "s3://other"}, {"name": "other", "uri": "s3://orders"}):
        refused = client.post(f"{API}/assets", headers=admin, json=clash)
        assert refused.status_code == 409 and refused.get_json()["detail"]["field"] in ("name", "uri")
    worker(client, "PUT", worker_auth(ti_id), key="offset", body={"value": 1}, name="orders")
    listed = client.get(f"{API}/assets?name_pattern=ORD", headers=admin).get_json()
    assert listed["total_entries"] == 1 and listed["assets"][0]["key_count"] == 1
    assert listed["assets"][0]["last_updated_by"]["kind"] == "task"
    assert client.get(f"{API}/assets?uri_pattern=nothing", headers=admin).get_json()["total_entries"] == 0
    assert client.get(f"{API}/assets/{body['id']}", headers=admin).get_json()["name"] == "orders"
    assert client.delete(f"{API}/assets/{body['id']}", headers=admin).status_code == 204
    assert client.get(f"{API}/assets/{body['id']}", headers=admin).status_code == 404
    assert asset_rows() == []  # its keys went with it
    gone = worker(client, "GET", worker_auth(ti_id), key="offset", name="orders")
    assert gone.status_code == 404 and gone.get_json()["detail"]["message"] == "Asset with name='orders' not found"


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_register_and_delete_assets(client, admin_auth, asset, role):
    headers = admin_auth(role)
    assert client.post(f"{API}/assets", headers=headers, json={"name": "x", "uri": "x"}).status_code == 403
    assert client.delete(f"{API}/assets/{asset}", headers=headers).status_code == 403
    assert client.get(f"{API}/assets", headers=headers).status_code == 200


# --- the worker API -----------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["name", "uri"])
def test_worker_set_get_delete_clear_by_name_and_by_uri(client, asset, ti_id, worker_auth, asset_rows, by):
    headers = worker_auth(ti_id)
    assert worker(client, "PUT", headers, by, key="watermark/2026", body={"value": {"offset": 42}}).status_code == 204
    assert worker(client, "GET", headers, by, key="watermark/2026").get_json() == {"value": {"offset": 42}}
    assert worker(client, "PUT", headers, by, key="b", body={"value": [1.0, "x"]}).status_code == 204
    assert worker(client, "DELETE", headers, by, key="watermark/2026").status_code == 204
    missing = worker(client, "GET", headers, by, key="watermark/2026")
    assert missing.status_code == 404 and missing.get_json()["detail"]["field"] == "key"
    assert worker(client, "DELETE", headers, by, key="never-there").status_code == 204
    assert [row.key for row in asset_rows()] == ["b"]
    assert worker(client, "DELETE", headers, by, "clear").status_code == 204
    assert asset_rows() == []


def test_a_write_records_the_writing_task_instance_or_watcher(client, app, asset, make_run, worker_auth,
                                                              admin_auth, asset_rows):
    ids = make_run(tasks=(("loader", [3]),))
    assert worker(client, "PUT", worker_auth(ids[("loader", 3)]), key="k", body={"value": 1}).status_code == 204
    entry = client.get(f"{API}/assets/{asset}/state-store/k", headers=admin_auth("viewer")).get_json()
    assert entry["last_updated_by"] == {"kind": "task", "dag_id": "dag", "run_id": "run_1", "task_id": "loader",
                                        "map_index": 3, "name": None}
    token = client.post(f"{API}/assets/watcher-token", headers=admin_auth(), json={"watcher": "kafka-offsets"})
    watcher = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert worker(client, "PUT", watcher, "uri", key="k", body={"value": 2}).status_code == 204
    entry = client.get(f"{API}/assets/{asset}/state-store/k", headers=admin_auth("viewer")).get_json()
    assert entry["last_updated_by"]["kind"] == "watcher" and entry["last_updated_by"]["name"] == "kafka-offsets"
    assert entry["version"] == 2
    # A watcher's token is for assets only: no task instance's keys.
    assert client.get(f"/execution/store/ti/{ids[('loader', 3)]}/k", headers=watcher).status_code == 403


def test_a_watcher_token_from_the_cli(runner, client, asset):
    result = runner.invoke(args=["token", "--watcher", "s3-sensor"])
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}
    assert worker(client, "PUT", headers, key="seen", body={"value": "x"}).status_code == 204


BAD_QUERIES = [
    ({"key": "k"}, "name", "no name"),
    ({"name": "", "key": "k"}, "name", "empty name"),
    ({"name": NAME}, "key", "no key"),
    ({"name": NAME, "key": ""}, "key", "empty key"),
    ({"name": NAME, "uri": URI, "key": "k"}, "uri", "both name and uri"),
    ({"name": NAME, "key": "a\x01b"}, "key", "control character in key"),
    ({"name": NAME, "key": "k" * 513}, "key", "key too long"),
]


@pytest.mark.parametrize("query, field, _why", BAD_QUERIES, ids=[case[2] for case in BAD_QUERIES])
def test_bad_query_parameters_are_422_naming_them_and_write_nothing(client, asset, ti_id, worker_auth, asset_rows,
                                                                    query, field, _why):
    headers = worker_auth(ti_id)
    for method in ("GET", "PUT", "DELETE"):
        response = client.open(f"{WORKER}/by-name/value", method=method, headers=headers, query_string=query,
                               data=json.dumps({"value": 1}))
        assert response.status_code == 422, (method, response.get_json())
        assert response.get_json()["detail"]["field"] == field
    assert asset_rows() == []


@pytest.mark.parametrize("body, field", [({"value": None}, "value"), ({"value": 1, "expires_at": None}, "expires_at"),
                                         ({}, "value"), ([1], "body")])
def test_bad_bodies_are_422_and_write_nothing(client, asset, ti_id, worker_auth, asset_rows, body, field):
    response = worker(client, "PUT", worker_auth(ti_id), key="k", body=body)
    assert response.status_code == 422 and response.get_json()["detail"]["field"] == field
    assert asset_rows() == []


def test_a_body_over_the_hard_limit_is_413(make_app, asset, ti_id, worker_auth):
    client = make_app(max_request_bytes=1024).test_client()
    response = worker(client, "PUT", worker_auth(ti_id), key="k", body={"value": "x" * 2000})
    assert response.status_code == 413


def test_no_token_is_401_before_anything(client, asset):
    assert worker(client, "GET", {}, key="k").status_code == 401
    assert worker(client, "GET", {"Authorization": "Bearer nope"}, key="").status_code == 401


def test_declared_access_allows_only_the_tasks_inlets_and_outlets(make_app, admin_auth, asset_rows, worker_auth):
    app = make_app(asset_access="declared")
    client = app.test_client()
    with app.app_context():
        asset_registry.create("other", "s3://other")
        asset_registry.create(NAME, URI)
        db.session.commit()
    created = client.post(f"{API}/dags/etl/dagRuns", headers=admin_auth(), json={
        "dag_run_id": "r", "tasks": [{"task_id": "reader", "inlets": [NAME]}, {"task_id": "writer", "outlets": [NAME]},
                                     {"task_id": "bystander"}]})
    ids = {ti["task_id"]: ti["id"] for ti in created.get_json()["task_instances"]}
    assert worker(client, "PUT", worker_auth(ids["writer"]), key="w", body={"value": 1}).status_code == 204
    assert worker(client, "GET", worker_auth(ids["reader"]), "uri", key="w").get_json() == {"value": 1}
    refused = worker(client, "PUT", worker_auth(ids["bystander"]), key="w", body={"value": 2})
    assert refused.status_code == 403 and "inlet or outlet" in refused.get_json()["detail"]["message"]
    assert worker(client, "GET", worker_auth(ids["writer"]), key="w", name="other").status_code == 403
    assert worker(client, "GET", worker_auth(ids["writer"]), key="w", name="unknown").status_code == 404
    assert [row.value for row in asset_rows()] == ["1"]


# --- the admin API's keys ----------------------------------------------------------------------


def test_admin_edits_are_versioned_recorded_and_never_expire(app, client, asset, admin_auth, ti_id, worker_auth):
    editor, base = admin_auth("editor"), f"{API}/assets/{asset}/state-store"
    created = client.put(f"{base}/cursor", headers=editor, json={"value": {"offset": 1}})
    assert created.status_code == 201 and created.get_json()["last_updated_by"]["kind"] == "api"
    assert created.get_json()["last_updated_by"]["name"].startswith("api-key:test-editor-")
    etag = created.headers["ETag"]
    worker(client, "PUT", worker_auth(ti_id), key="cursor", body={"value": {"offset": 2}})  # meanwhile
    stale = client.patch(f"{base}/cursor", headers={**editor, "If-Match": etag}, json={"value": {"offset": 9}})
    assert stale.status_code == 412 and stale.get_json()["detail"]["current"]["value"] == {"offset": 2}
    assert client.patch(f"{base}/cursor", headers=editor, json={"value": {"offset": 3}}).status_code == 200
    refused = client.put(f"{base}/cursor", headers=editor, json={"value": 1, "expires_at": None})
    assert refused.status_code == 422 and refused.get_json()["detail"]["field"] == "expires_at"
    listed = client.get(base, headers=admin_auth("viewer")).get_json()
    assert listed["total_entries"] == 1
    assert set(listed["asset_state_store"][0]) == {"key", "value", "updated_at", "last_updated_by", "version"}
    assert client.delete(base, headers=editor).get_json() == {"deleted": 1}
    with app.app_context():
        history = db.session.execute(select(KeyChange.scope_kind, KeyChange.action, KeyChange.asset_name,
                                            KeyChange.dag_id).order_by(KeyChange.id)).all()
    assert [tuple(row) for row in history] == [("asset", "set", NAME, None), ("asset", "set", NAME, None),
                                              ("asset", "clear", NAME, None)]


def test_admin_keys_of_an_unknown_asset_are_404(client, admin_auth):
    assert client.get(f"{API}/assets/999/state-store", headers=admin_auth("viewer")).status_code == 404
    assert client.put(f"{API}/assets/999/state-store/k", headers=admin_auth("editor"),
                      json={"value": 1}).status_code == 404


def test_clean_removes_keys_left_behind_by_a_deleted_asset(app, runner, asset, ti_id, worker_auth, client,
                                                           asset_rows):
    """Keys whose asset row is gone without the cascade (foreign keys off, a restored dump)."""
    worker(client, "PUT", worker_auth(ti_id), key="left", body={"value": 1})
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            elif engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SET session_replication_role = replica")
            else:
                connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
            connection.exec_driver_sql(f"DELETE FROM asset WHERE id = {asset}")
            connection.commit()
        engine.dispose()
    assert [row.key for row in asset_rows()] == ["left"]
    result = runner.invoke(args=["clean"])
    assert result.exit_code == 0 and "1 keys of deleted assets" in result.output
    assert asset_rows() == []


def test_assets_cli(runner):
    created = runner.invoke(args=["assets", "create", NAME, "--uri", URI, "--group", "lake"])
    assert created.exit_code == 0, created.output
    asset_id = created.output.strip().splitlines()[-1]
    listed = runner.invoke(args=["assets", "list", "--name-pattern", "events"]).output.splitlines()
    assert listed[1].split("\t")[:4] == [asset_id, NAME, URI, "lake"]
    duplicate = runner.invoke(args=["assets", "create", NAME])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert runner.invoke(args=["assets", "delete", asset_id]).exit_code == 0
    header = "id\tname\turi\tgroup\tkeys\tlast write"
    assert runner.invoke(args=["assets", "list"]).output.strip().splitlines() == [header]
