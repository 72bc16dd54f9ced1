"""Scale-out: two server processes (each with its own workers and connection pool) on one
database must never disagree. A write through one is read through the other at once; an admin
edit through one, based on a version read there, is refused with 412 once a worker wrote the
key through the other. Runs on the test database of the pass (SQLite, PostgreSQL or MariaDB),
and in the PostgreSQL pass a second time with both servers behind a PgBouncer in transaction
mode (``TASKSTORE_DB_POOLER=transaction``), where each transaction may run on another server
connection shared with other clients."""

from __future__ import annotations

import httpx
import pytest

from servers import start_server
from support import key_url, store_url

pytestmark = pytest.mark.slow  # two server processes

API = "/api/v2"


@pytest.fixture(scope="module")
def two_servers(served_database, tmp_path_factory):
    database_url, settings = served_database
    workdir = tmp_path_factory.mktemp("scale-out")
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(start_server(database_url, workdir / name, workers=2, threads=4, **settings))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def clients(two_servers):
    made = [httpx.Client(base_url=server.base_url, timeout=30) for server in two_servers]
    yield made
    for client in made:
        client.close()


def test_a_write_through_one_is_read_through_the_other_at_once(clients, ti_id, worker_auth):
    a, b = clients
    auth = worker_auth(ti_id)
    for i in range(20):  # alternate the direction; every read follows its write immediately
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        key = f"spark/job-{i % 3}"  # overwrites too, not only new keys
        written = writer.put(key_url(ti_id, key), headers=auth, json={"value": {"i": i}, "expires_at": None})
        assert written.status_code == 204
        read = reader.get(key_url(ti_id, key), headers=auth)
        assert read.status_code == 200 and read.json() == {"value": {"i": i}}, (i, read.text)

    assert a.delete(key_url(ti_id, "spark/job-0"), headers=auth).status_code == 204
    assert b.get(key_url(ti_id, "spark/job-0"), headers=auth).status_code == 404
    assert b.delete(key_url(ti_id), headers=auth).status_code == 204
    for key in ("spark/job-1", "spark/job-2"):
        assert a.get(key_url(ti_id, key), headers=auth).status_code == 404


def test_a_token_minted_by_one_works_on_the_other(clients, ti_id, admin_auth):
    a, b = clients
    minted = a.post(f"{API}/taskInstances/{ti_id}/token", headers=admin_auth())
    assert minted.status_code == 200
    auth = {"Authorization": f"Bearer {minted.json()['token']}"}
    assert b.put(key_url(ti_id, "k"), headers=auth, json={"value": 1}).status_code == 204
    assert a.get(key_url(ti_id, "k"), headers=auth).json() == {"value": 1}


def test_a_stale_admin_edit_through_one_is_refused_after_a_worker_wrote_through_the_other(
        clients, ti_id, worker_auth, admin_auth):
    a, b = clients
    worker, admin = worker_auth(ti_id), admin_auth("editor")
    assert b.put(key_url(ti_id, "job"), headers=worker, json={"value": "first", "expires_at": None}).status_code == 204

    read = a.get(store_url("job"), headers=admin)  # the person reads the key through server A
    assert read.status_code == 200 and read.json()["value"] == "first"
    etag = read.headers["ETag"]

    # The worker writes through server B; then the person's edit based on the old read, through A.
    assert b.put(key_url(ti_id, "job"), headers=worker, json={"value": "second", "expires_at": None}).status_code == 204
    for method, body in (("PUT", {"value": "edited", "expires_at": None}), ("PATCH", {"value": "edited"}),
                         ("DELETE", None)):
        refused = a.request(method, store_url("job"), headers={**admin, "If-Match": etag}, json=body)
        assert refused.status_code == 412, (method, refused.text)
        assert refused.json()["detail"]["current"]["value"] == "second"
        assert refused.headers["ETag"] != etag
    assert b.get(key_url(ti_id, "job"), headers=worker).json() == {"value": "second"}  # nothing changed

    # With the version just read (through B this time), the edit through A goes through.
    fresh = b.get(store_url("job"), headers=admin).headers["ETag"]
    edited = a.patch(store_url("job"), headers={**admin, "If-Match": fresh}, json={"value": "edited"})
    assert edited.status_code == 200, edited.text
    assert b.get(key_url(ti_id, "job"), headers=worker).json() == {"value": "edited"}
    # ... and the ETag A read before the worker wrote is still refused on B.
    assert b.delete(store_url("job"), headers={**admin, "If-Match": etag}).status_code == 412


def test_runs_created_through_one_are_listed_and_deleted_through_the_other(clients, admin_auth, worker_auth):
    a, b = clients
    admin = admin_auth()
    created = a.post(f"{API}/dags/etl/dagRuns", headers=admin,
                     json={"dag_run_id": "manual_1", "tasks": [{"task_id": "t", "map_indexes": [0, 1]}]})
    assert created.status_code == 201, created.text
    ti = created.json()["task_instances"][0]["id"]
    assert b.put(key_url(ti, "k"), headers=worker_auth(ti), json={"value": 1}).status_code == 204
    listed = b.get(f"{API}/dags/etl/dagRuns/manual_1/taskInstances", headers=admin).json()
    assert listed["total_entries"] == 2
    assert b.delete(f"{API}/dags/etl/dagRuns/manual_1", headers=admin).status_code == 204
    assert a.get(f"{API}/dags/etl/dagRuns/manual_1", headers=admin).status_code == 404
    assert a.get(key_url(ti, "k"), headers=worker_auth(ti)).status_code == 404
