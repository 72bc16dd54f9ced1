"""Per-DAG and per-asset permissions: a person or API key limited to DAG id and asset name
patterns sees and finds only those, everywhere, and meets 404 (never 403) elsewhere."""

from __future__ import annotations

import uuid

import pytest

from support import PASSWORD, log_in, store_url, table_rows, ti_page_url
from webapp import assets
from webapp.auth import api_keys, name_patterns, users
from webapp.extensions import db
from webapp.models import DagRun

API = "/api/v2"
SEEN = ["etl_daily", "etl_hourly"]
# Left out by 'etl_*': another prefix, another case, and "_" which is a character, not a wildcard.
HIDDEN = ["ml_train", "ETL_upper", "etlXdaily"]


@pytest.fixture
def world(app, make_run, worker_put):
    """Five DAGs holding a key "checkpoint" each, and two assets holding "watermark"."""
    for dag_id in SEEN + HIDDEN:
        worker_put(make_run(dag_id=dag_id)["task"], "checkpoint", {"dag": dag_id})
    with app.app_context():
        ids = {}
        for name in ("warehouse.orders", "secret.payroll"):
            asset = assets.create(name, f"s3://{name}")
            db.session.flush()
            ids[name] = asset.id
        db.session.commit()
    return ids


def limited(**overrides):
    return name_patterns.Limits.parse(overrides.get("dags", "etl_*"), overrides.get("assets", "warehouse.*"))


@pytest.fixture
def limited_key(app):
    def _make(role="admin", **patterns):
        with app.app_context():
            _record, key = api_keys.create(f"limited-{role}-{uuid.uuid4().hex[:6]}", role, limits=limited(**patterns))
            db.session.commit()
        return {"Authorization": f"Bearer {key}"}

    return _make


@pytest.fixture
def alice(app, client):
    """An editor limited to etl_* and warehouse.*, logged in."""
    with app.app_context():
        users.create("alice", PASSWORD, "editor", limits=limited())
        db.session.commit()
    assert log_in(client, "alice").status_code == 302
    return client


def dag_rows(client) -> list[str]:
    """The DAG ids the DAG list shows."""
    return [row[0] for row in table_rows(client.get("/").get_data(as_text=True))[1:]]


def put_asset_key(client, asset_id, headers):
    response = client.put(f"{API}/assets/{asset_id}/state-store/watermark", headers=headers, json={"value": 1})
    assert response.status_code in (200, 201), response.text


def test_the_ui_shows_and_finds_only_the_dags_and_assets_allowed(alice, world, admin_auth):
    for asset_id in world.values():
        put_asset_key(alice, asset_id, admin_auth())
    assert dag_rows(alice) == SEEN
    found = alice.get("/search?q=checkpoint").get_data(as_text=True)
    assert all(dag in found for dag in SEEN) and not any(f">{dag}<" in found or f"/dags/{dag}/" in found
                                                         for dag in HIDDEN)
    watermarks = alice.get("/search?q=watermark").get_data(as_text=True)
    assert "warehouse.orders" in watermarks and "secret.payroll" not in watermarks
    asset_page = alice.get("/assets").get_data(as_text=True)
    assert "warehouse.orders" in asset_page and "secret.payroll" not in asset_page


@pytest.mark.parametrize("dag_id", HIDDEN)
def test_every_ui_page_of_a_dag_outside_the_patterns_is_404(alice, world, dag_id):
    for path in (f"/dags/{dag_id}", f"/dags/{dag_id}/runs/run_1", ti_page_url(dag_id),
                 ti_page_url(dag_id, action="edit", key="checkpoint"), ti_page_url(dag_id, action="clear")):
        assert alice.get(path).status_code == 404, path
    assert alice.get(f"/assets/{world['secret.payroll']}").status_code == 404
    assert alice.get(f"/dags/{SEEN[0]}/runs/run_1").status_code == 200


def test_a_hidden_dag_reads_exactly_as_one_that_does_not_exist(world, client, limited_key):
    headers = limited_key()
    hidden = client.get(f"{API}/dags/ml_train/dagRuns/run_1", headers=headers)
    missing = client.get(f"{API}/dags/ml_nothing/dagRuns/run_1", headers=headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json()["detail"]["message"].replace("ml_train", "X") == \
        missing.get_json()["detail"]["message"].replace("ml_nothing", "X")
    secret = client.get(f"{API}/assets/{world['secret.payroll']}", headers=headers)
    nowhere = client.get(f"{API}/assets/999999", headers=headers)
    assert secret.status_code == nowhere.status_code == 404
    assert secret.get_json()["detail"]["message"] == \
        nowhere.get_json()["detail"]["message"].replace("999999", str(world["secret.payroll"]))


def test_the_admin_api_lists_only_what_is_allowed_and_refuses_the_rest_with_404(app, client, world, make_run,
                                                                                limited_key):
    headers = limited_key()
    assert [dag["dag_id"] for dag in client.get(f"{API}/dags", headers=headers).get_json()["dags"]] == SEEN
    assert [a["name"] for a in client.get(f"{API}/assets", headers=headers).get_json()["assets"]] == \
        ["warehouse.orders"]
    hidden_ti = make_run(dag_id="ml_train", run_id="run_2")["task"]
    for method, path, body in (
        ("GET", f"{API}/dags/ml_train/dagRuns", None),
        ("GET", store_url(dag="ml_train"), None),
        ("DELETE", store_url(dag="ml_train"), None),
        ("POST", f"{API}/dags/ml_train/clearTaskInstances", {"dag_run_id": "run_1"}),
        ("DELETE", f"{API}/dags/ml_train/dagRuns/run_1", None),
        ("POST", f"{API}/dags/ml_train/dagRuns", {"run_id": "new", "tasks": [{"task_id": "t"}]}),
        ("POST", f"{API}/taskInstances/{hidden_ti}/token", None),
        ("DELETE", f"{API}/assets/{world['secret.payroll']}", None),
    ):
        response = client.open(path, method=method, headers=headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    with app.app_context():  # nothing was deleted, cleared or created
        assert db.session.query(DagRun).filter_by(dag_id="ml_train").count() == 2
        assert assets.get(world["secret.payroll"]).name == "secret.payroll"
    assert client.get(store_url(dag="etl_daily"), headers=headers).status_code == 200


def test_a_token_for_a_hidden_task_instance_reads_as_for_one_that_does_not_exist(client, make_run, limited_key):
    headers = limited_key()
    hidden = client.post(f"{API}/taskInstances/{make_run(dag_id='ml_train')['task']}/token", headers=headers)
    unknown_id = str(uuid.uuid4())
    unknown = client.post(f"{API}/taskInstances/{unknown_id}/token", headers=headers)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_json()["detail"]["reason"] == unknown.get_json()["detail"]["reason"]


def test_a_limited_admin_may_not_manage_people_keys_watchers_or_assets_outside(client, limited_key, table_contents):
    headers = limited_key()
    before = table_contents()
    for method, path, body in (
        ("POST", f"{API}/users", {"username": "mallory", "password": PASSWORD, "role": "admin"}),
        ("POST", f"{API}/apiKeys", {"name": "wide", "role": "admin"}),
        ("GET", f"{API}/auditLog", None),
        ("POST", f"{API}/assets/watcher-token", {"watcher": "w"}),
        ("POST", f"{API}/assets", {"name": "secret.new", "uri": "s3://secret.new"}),
    ):
        response = client.open(path, method=method, headers=headers, json=body)
        assert response.status_code == 403, (method, path, response.text)
    assert table_contents() == before
    created = client.post(f"{API}/assets", headers=headers, json={"name": "warehouse.items", "uri": "s3://items"})
    assert created.status_code == 201


def test_a_limited_service_key_reaches_only_its_dags_and_assets(client, world, limited_key, service_key):
    unlimited = {"Authorization": f"Bearer {service_key}"}
    hidden_key = f"{API}/service/assets/value?name=secret.payroll&key=k"
    assert client.put(hidden_key, headers=unlimited, json={"value_json": '"salaries"'}).status_code == 204
    headers = limited_key("service")
    ok = client.put(f"{API}/service/tasks/etl_new/run_1/load/keys/k", headers=headers, json={"value_json": "1"})
    assert ok.status_code == 204
    refused = client.put(f"{API}/service/tasks/ml_new/run_1/load/keys/k", headers=headers, json={"value_json": "1"})
    assert refused.status_code == 404
    by_uri = client.put(f"{API}/service/assets/value?uri=s3://secret.payroll&key=k", headers=headers,
                        json={"value_json": "1"})
    assert by_uri.status_code == 404
    assert client.delete(hidden_key, headers=headers).status_code in (204, 404)
    assert client.get(hidden_key, headers=headers).status_code == 404
    assert client.get(hidden_key, headers=unlimited).get_data(as_text=True) == '"salaries"'  # untouched


def test_question_mark_is_one_character_and_case_counts(client, world, limited_key):
    headers = limited_key(dags="etl_da?ly,ml_TRAIN")
    assert [dag["dag_id"] for dag in client.get(f"{API}/dags", headers=headers).get_json()["dags"]] == ["etl_daily"]


def test_limits_change_from_the_next_page_without_a_new_login(app, alice, world, runner):
    assert dag_rows(alice) == SEEN
    result = runner.invoke(args=["users", "limit", "alice", "--dags", "ml_*"])
    assert result.exit_code == 0 and "now sees dags ml_*, assets warehouse.*" in result.output
    assert dag_rows(alice) == ["ml_train"]
    assert alice.get("/dags/etl_daily").status_code == 404
    runner.invoke(args=["users", "limit", "alice", "--dags", "*"])
    assert len(dag_rows(alice)) == len(SEEN + HIDDEN)


def test_api_keys_are_limited_and_changed_through_the_cli_and_the_api(client, world, runner, admin_auth):
    created = runner.invoke(args=["api-keys", "create", "reporting", "--role", "viewer", "--dags", "etl_*"])
    assert created.exit_code == 0, created.output
    headers = {"Authorization": f"Bearer {created.output.splitlines()[-1]}"}
    assert len(client.get(f"{API}/dags", headers=headers).get_json()["dags"]) == len(SEEN)
    changed = client.patch(f"{API}/apiKeys/reporting", headers=admin_auth(), json={"dags": "ml_*"})
    assert changed.status_code == 200 and changed.get_json()["dags"] == "ml_*"
    assert [d["dag_id"] for d in client.get(f"{API}/dags", headers=headers).get_json()["dags"]] == ["ml_train"]
    listed = runner.invoke(args=["api-keys", "list"]).output
    assert "\tml_*\t*\t" in listed


@pytest.mark.parametrize("patterns, why", [("etl_*,,ml_*", "empty pattern"), ("etl_[ab]", "brackets"),
                                           ("etl *", "spaces")])
def test_a_bad_pattern_is_refused_naming_the_field_and_writes_nothing(client, admin_auth, runner, table_contents,
                                                                      patterns, why):
    headers = admin_auth()
    before = table_contents()
    response = client.post(f"{API}/users", headers=headers,
                           json={"username": "bob", "password": PASSWORD, "dags": patterns})
    assert response.status_code == 422 and response.get_json()["detail"]["field"] == "dags", why
    result = runner.invoke(args=["api-keys", "create", "k", "--assets", patterns])
    assert result.exit_code != 0 and "assets" in result.output, why
    assert table_contents() == before


def test_unlimited_people_see_everything(login_as, world):
    client = login_as("viewer")
    assert dag_rows(client) == sorted(SEEN + HIDDEN)


# --- who last wrote an asset key -------------------------------------------------------------------

# A task of a DAG the limited readers may not see: none of these may reach them.
HIDDEN_WRITER = ("ml_train", "manual__secret", "train_model")


@pytest.fixture
def written_by_a_hidden_dag(world, make_run, asset_put, worker_auth):
    """warehouse.orders (which limited readers see): "seen" written by a task of etl_daily,
    then "watermark" by a task of ml_train (the asset's latest write)."""
    asset_put(worker_auth(make_run(dag_id="etl_daily", run_id="run_9", tasks=(("load", None),))["load"]),
              "warehouse.orders", "seen", 1)
    dag_id, run_id, task_id = HIDDEN_WRITER
    asset_put(worker_auth(make_run(dag_id=dag_id, run_id=run_id, tasks=((task_id, None),))[task_id]),
              "warehouse.orders", "watermark", 2)
    return world["warehouse.orders"]


def names_the_hidden_writer(text: str) -> bool:
    return any(part in text for part in HIDDEN_WRITER)


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_a_dag_limited_key_sees_a_hidden_dags_task_as_a_task_without_ids(client, written_by_a_hidden_dag,
                                                                          limited_key, role):
    headers = limited_key(role)
    keys = client.get(f"{API}/assets/{written_by_a_hidden_dag}/state-store", headers=headers)
    one = client.get(f"{API}/assets/{written_by_a_hidden_dag}/state-store/watermark", headers=headers)
    listed = client.get(f"{API}/assets", headers=headers)
    hidden = {"kind": "task", "dag_id": None, "run_id": None, "task_id": None, "map_index": None, "name": None,
              "hidden": True}
    writers = {entry["key"]: entry["last_updated_by"] for entry in keys.get_json()["asset_state_store"]}
    assert writers == {"seen": {"kind": "task", "dag_id": "etl_daily", "run_id": "run_9", "task_id": "load",
                                "map_index": -1, "name": None},
                       "watermark": hidden}
    assert one.get_json()["last_updated_by"] == hidden
    assert listed.get_json()["assets"][0]["last_updated_by"] == hidden
    for response in (keys, one, listed):
        assert response.status_code == 200 and not names_the_hidden_writer(response.text)


def test_a_dag_limited_person_sees_a_task_of_another_dag_without_name_or_link(alice, written_by_a_hidden_dag):
    page = alice.get(f"/assets/{written_by_a_hidden_dag}").text
    writers = {row[0]: row[3] for row in table_rows(page)[1:]}
    assert writers == {"seen": "load etl_daily · run_9", "watermark": "a task of another DAG"}
    assert '<a href="/dags/etl_daily/runs/run_9/tasks/load">load</a>' in page
    asset_list = alice.get("/assets").text
    assert table_rows(asset_list)[1][5] == "a task of another DAG"
    for html in (page, asset_list):
        assert not names_the_hidden_writer(html) and "/dags/ml_train" not in html


def test_unlimited_readers_see_every_writer(app, client, written_by_a_hidden_dag, admin_auth, login_as):
    entry = client.get(f"{API}/assets/{written_by_a_hidden_dag}/state-store/watermark", headers=admin_auth("viewer"))
    assert entry.get_json()["last_updated_by"] == {"kind": "task", "dag_id": "ml_train", "run_id": "manual__secret",
                                                   "task_id": "train_model", "map_index": -1, "name": None}
    viewer = login_as("viewer")
    assert table_rows(viewer.get("/assets").text)[2][5] == "train_model ml_train · manual__secret"
    page = viewer.get(f"/assets/{written_by_a_hidden_dag}").text
    assert '<a href="/dags/ml_train/runs/manual__secret/tasks/train_model">train_model</a>' in page


# --- registering an asset on first write ------------------------------------------------------------


def test_a_uri_held_by_a_hidden_asset_is_refused_as_not_found_and_writes_nothing(client, world, limited_key,
                                                                                 table_contents):
    """Naming an allowed name with the URI of an asset the key may not see answers as naming that
    URI alone does (not found): a 409 "already exists" would confirm the hidden asset."""
    headers, admin = limited_key("service"), limited_key("admin")
    service = f"{API}/service/assets/value"
    before = table_contents()
    with_name = client.put(service, headers=headers, json={"value_json": "1"},
                           query_string={"name": "warehouse.new", "uri": "s3://secret.payroll", "key": "k"})
    uri_alone = client.put(service, headers=headers, json={"value_json": "1"},
                           query_string={"uri": "s3://secret.payroll", "key": "k"})
    registered = client.post(f"{API}/assets", headers=admin,
                             json={"name": "warehouse.new", "uri": "s3://secret.payroll"})
    assert with_name.status_code == uri_alone.status_code == registered.status_code == 404
    assert with_name.get_json() == uri_alone.get_json() == registered.get_json()
    assert "secret.payroll" not in with_name.get_json()["detail"]["message"].replace("s3://secret.payroll", "")
    assert table_contents() == before  # no new asset, nothing written to the hidden one
    # A URI the key can see is still a plain clash; a free one registers the asset.
    visible = client.put(service, headers=headers, json={"value_json": "1"},
                         query_string={"name": "warehouse.new", "uri": "s3://warehouse.orders", "key": "k"})
    assert visible.status_code == 409 and visible.get_json()["detail"]["field"] == "uri"
    free = client.put(service, headers=headers, json={"value_json": "1"},
                      query_string={"name": "warehouse.new", "uri": "s3://warehouse.new", "key": "k"})
    assert free.status_code == 204
