"""Prometheus metrics at /metrics, as an operator reads them: request counts by route template,
refusals by reason, store operations by kind and scope, the login throttle, the connection
pool, the last `taskstore clean`; who may read them (TASKSTORE_METRICS); and, on a real
two-worker `taskstore serve`, that a scrape adds up every worker's figures.

In-process figures accumulate over the whole test session (one process, one registry), so
these tests compare a scrape before with one after."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from servers import kill, start_server
from support import PASSWORD, key_url, log_in, store_url
from webapp.auth import api_keys
from webapp.extensions import db

WORKER_ROUTE = "/execution/store/ti/<ti_id>/<storekey:key>"
ASSETS = "/execution/store/asset/by-name"


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: {(sample name, frozenset of label pairs): value}."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """The sum of a sample over every label set that includes ``labels``."""
    wanted = set(labels.items())
    return sum(v for (sample, found), v in samples.items() if sample == name and wanted <= found)


def scrape(client, headers: dict | None = None) -> dict:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    return parse(response.text)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def api_key(app, role: str) -> dict[str, str]:
    with app.app_context():
        _record, key = api_keys.create(f"metrics-test-{role}-{os.urandom(3).hex()}", role)
        db.session.commit()
    return {"Authorization": f"Bearer {key}"}


# --- who may read them ------------------------------------------------------------------------------


def test_on_by_default_and_readable_without_credentials(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain" and "version=" in response.headers["Content-Type"]
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"taskstore_http_requests", "taskstore_http_request_duration_seconds", "taskstore_refusals",
            "taskstore_store_operations", "taskstore_login_throttled", "taskstore_db_pool_connections_in_use",
            "taskstore_db_pool_overflow", "taskstore_clean_last_success_timestamp_seconds",
            "taskstore_clean_last_duration_seconds", "taskstore_clean_last_deleted",
            "taskstore_clean_deleted"} <= names


def test_api_key_mode_lets_a_metrics_key_read_metrics_and_nothing_else(make_app, ti_id, worker_auth):
    app = make_app(metrics="api-key")
    client = app.test_client()
    metrics_key, viewer_key, admin_key = (api_key(app, role) for role in ("metrics", "viewer", "admin"))

    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer tsk_not-a-key"}).status_code == 401
    assert client.get("/metrics", headers=worker_auth(ti_id)).status_code == 401  # a worker token is no API key
    assert client.get("/metrics", headers=viewer_key).status_code == 403
    assert client.get("/metrics", headers=metrics_key).status_code == 200
    assert client.get("/metrics", headers=admin_key).status_code == 200

    # The metrics role opens /metrics only.
    for method, path in (("GET", "/api/v2/dags"), ("POST", f"/api/v2/taskInstances/{ti_id}/token"),
                         ("GET", "/api/v2/service/assets/value?name=x&key=k")):
        answer = client.open(path, method=method, headers=metrics_key)
        assert answer.status_code == 403, (path, answer.text)
    assert "may use /metrics only" in client.get("/api/v2/dags", headers=metrics_key).json["detail"]["message"]
    assert client.get(key_url(ti_id, "k"), headers=metrics_key).status_code == 401


def test_a_metrics_key_is_made_from_the_command_line(app, runner):
    result = runner.invoke(args=["api-keys", "create", "prometheus", "--role", "metrics"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    client = app.test_client()
    assert client.get("/api/v2/dags", headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_off_answers_404_and_counts_none_of_its_requests(make_app, client):
    off = make_app(metrics="off").test_client()
    before = scrape(client)
    assert off.get("/metrics").status_code == 404
    assert off.get("/health").status_code == 200
    after = scrape(client)
    assert total(after, "taskstore_http_requests_total", route="/health") == \
        total(before, "taskstore_http_requests_total", route="/health")


# --- what they count --------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_method_and_status(client, ti_id, auth):
    before = scrape(client)
    for key in ("a", "b/c", "d"):
        assert client.put(key_url(ti_id, key), json={"value": 1}, headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "a"), headers=auth).status_code == 200
    assert client.get(key_url(ti_id, "missing"), headers=auth).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    after = scrape(client)

    requests = "taskstore_http_requests_total"
    assert delta(before, after, requests, route=WORKER_ROUTE, method="PUT", status="204") == 3
    assert delta(before, after, requests, route=WORKER_ROUTE, method="GET", status="200") == 1
    assert delta(before, after, requests, route=WORKER_ROUTE, method="GET", status="404") == 1
    assert delta(before, after, requests, route="unmatched", method="GET", status="404") == 1
    assert delta(before, after, requests, route="unmatched", method="other", status="405") == 1
    assert not any(ti_id in str(labels) for (_name, labels) in after), "a raw path leaked into a label"
    latency = "taskstore_http_request_duration_seconds_count"
    assert delta(before, after, latency, route=WORKER_ROUTE, method="PUT") == 3
    assert delta(before, after, "taskstore_http_request_duration_seconds_bucket", route=WORKER_ROUTE,
                 method="PUT", le="+Inf") == 3


def test_refusals_are_counted_by_reason(make_app, client, ti_id, auth, worker_auth, make_run, make_user):
    small = make_app(max_request_bytes=1024).test_client()
    other_ti = make_run(run_id="run_2")["task"]
    before = scrape(client)
    assert client.get(key_url(ti_id, "k")).status_code == 401
    assert client.get(key_url(ti_id, "k"), headers=worker_auth(other_ti)).status_code == 403
    assert client.get(key_url(ti_id, "k"), headers=auth).status_code == 404
    assert small.put(key_url(ti_id, "k"), data=b'{"value": "' + b"x" * 2000 + b'"}', headers=auth).status_code == 413
    assert client.put(key_url(ti_id, "k"), data=b"{not json", headers=auth).status_code == 422
    make_user("carol")
    statuses = [log_in(client, "carol", PASSWORD + "-wrong").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    after = scrape(client)

    refusals = "taskstore_refusals_total"
    for reason, count in (("unauthenticated", 1), ("forbidden", 1), ("not_found", 1), ("payload_too_large", 1),
                          ("validation_error", 1), ("too_many_attempts", 1)):
        assert delta(before, after, refusals, reason=reason) == count, reason
    assert delta(before, after, "taskstore_login_throttled_total") == 1


def test_store_operations_are_counted_by_kind_and_scope(client, ti_id, auth, admin_auth):
    admin, editor = admin_auth(), admin_auth("editor")
    created = client.post("/api/v2/assets", headers=admin, json={"name": "orders", "uri": "s3://orders"})
    assert created.status_code == 201
    before = scrape(client)
    # A worker: two writes, a read, a read of a missing key, a delete, a clear of its task instance.
    for key in ("a", "b"):
        assert client.put(key_url(ti_id, key), json={"value": 1}, headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "a"), headers=auth).status_code == 200
    assert client.get(key_url(ti_id, "gone"), headers=auth).status_code == 404
    assert client.delete(key_url(ti_id, "a"), headers=auth).status_code == 204
    assert client.delete(key_url(ti_id), headers=auth).status_code == 204
    # The same worker on an asset: a write, a read, a delete, a clear.
    query = {"name": "orders", "key": "watermark"}
    assert client.put(f"{ASSETS}/value", query_string=query, json={"value": 7}, headers=auth).status_code == 204
    assert client.get(f"{ASSETS}/value", query_string=query, headers=auth).status_code == 200
    assert client.delete(f"{ASSETS}/value", query_string=query, headers=auth).status_code == 204
    assert client.delete(f"{ASSETS}/clear", query_string={"name": "orders"}, headers=auth).status_code == 204
    # A tool through the admin API: a write, a read of the key, a listing, a delete, a clear.
    assert client.put(store_url("x"), headers=editor, json={"value": 1, "expires_at": None}).status_code in (200, 201)
    assert client.get(store_url("x"), headers=editor).status_code == 200
    assert client.get(store_url(), headers=editor).status_code == 200
    assert client.delete(store_url("x"), headers=editor).status_code == 204
    assert client.delete(store_url(), headers=editor).status_code in (200, 204)
    after = scrape(client)

    ops = "taskstore_store_operations_total"
    assert {(op, scope): delta(before, after, ops, operation=op, scope=scope)
            for op in ("read", "write", "delete", "clear") for scope in ("task", "asset")} == {
        ("read", "task"): 2 + 2, ("write", "task"): 2 + 1, ("delete", "task"): 1 + 1, ("clear", "task"): 1 + 1,
        ("read", "asset"): 1, ("write", "asset"): 1, ("delete", "asset"): 1, ("clear", "asset"): 1,
    }


def test_the_pool_gauges_show_this_process_at_rest(client):
    samples = scrape(client)
    assert value(samples, "taskstore_db_pool_connections_in_use") == 0  # the scrape gave its own back first
    assert value(samples, "taskstore_db_pool_overflow") == 0


def expire(app, ti: str, *keys: str) -> None:
    from sqlalchemy import update

    from webapp.models import TaskState

    with app.app_context():
        db.session.execute(update(TaskState).where(TaskState.key.in_(keys))
                           .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        db.session.commit()


def test_clean_records_its_last_run_for_the_scrape(app, client, runner, ti_id, auth):
    for key in ("old-1", "old-2", "fresh"):
        assert client.put(key_url(ti_id, key), json={"value": 1}, headers=auth).status_code == 204
    expire(app, ti_id, "old-1", "old-2")
    before = scrape(client)
    assert value(before, "taskstore_clean_last_success_timestamp_seconds", job="expired_keys") == 0  # never ran

    assert runner.invoke(args=["clean", "--dry-run"]).exit_code == 0  # a dry run records nothing
    assert value(scrape(client), "taskstore_clean_last_success_timestamp_seconds", job="expired_keys") == 0

    started = time.time()
    result = runner.invoke(args=["clean"])
    assert result.exit_code == 0 and "Deleted 2 expired keys" in result.output, result.output
    after = scrape(client)
    assert value(after, "taskstore_clean_last_deleted", job="expired_keys") == 2
    assert value(after, "taskstore_clean_deleted_total", job="expired_keys") == 2
    assert started - 1 <= value(after, "taskstore_clean_last_success_timestamp_seconds", job="expired_keys") \
        <= time.time() + 1
    assert 0 <= value(after, "taskstore_clean_last_duration_seconds", job="expired_keys") < 60

    assert runner.invoke(args=["clean"]).exit_code == 0  # nothing left: the last run deleted 0, the total stays
    again = scrape(client)
    assert value(again, "taskstore_clean_last_deleted", job="expired_keys") == 0
    assert value(again, "taskstore_clean_deleted_total", job="expired_keys") == 2

    result = runner.invoke(args=["clean", "--runs-older-than", "1d"])
    assert result.exit_code == 0, result.output
    assert value(scrape(client), "taskstore_clean_last_deleted", job="old_runs") == 0


# --- a real server: every worker counted ----------------------------------------------------------


def per_process_requests(directory: Path, pid: int, route: str) -> float:
    """One process's request count for a route, read from its own file as the scrape reads all of them."""
    source = directory / f"counter_{pid}.db"
    if not source.exists():
        return 0.0
    alone = directory.parent / f"alone-{pid}"
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir()
    shutil.copy(source, alone / source.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    return sum(sample.value for family in registry.collect() for sample in family.samples
               if sample.name == "taskstore_http_requests_total" and sample.labels["route"] == route)


def calls_until_both_workers_served(server, ti: str, headers: dict, directory: Path, *, at_least: int) -> int:
    """Worker calls, each on a fresh connection, until each worker process has answered some; how
    many were made. Each worker listens on a socket of its own and the kernel spreads new
    connections across them by address and port, so ``at_least`` calls miss a worker with a
    chance of about 2 in 2**at_least."""
    made = 0
    workers = server.worker_pids()
    assert len(workers) == 2, workers
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30,
                      limits=httpx.Limits(max_keepalive_connections=0)) as http:
        for i in range(at_least):
            method = "PUT" if i % 2 == 0 else "GET"
            answer = http.request(method, key_url(ti, f"k{i % 4}"), json={"value": i} if method == "PUT" else None)
            assert answer.status_code in (200, 204, 404), answer.text
            made += 1
    deadline = time.monotonic() + 5  # a count may land just after its response
    while not all(per_process_requests(directory, pid, WORKER_ROUTE) for pid in workers):
        assert time.monotonic() < deadline, "a worker answered nothing"
        time.sleep(0.05)
    return made


def test_a_scrape_adds_up_every_worker_process_and_a_dead_one_still_counts(migrated_database, tmp_path, ti_id,
                                                                           worker_auth, admin_auth):
    directory = tmp_path / "multiproc"
    with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": str(directory)}):  # only the server sees it
        server = start_server(migrated_database, tmp_path / "server", workers=2, threads=4)
    try:
        worker_calls = calls_until_both_workers_served(server, ti_id, worker_auth(ti_id), directory, at_least=40)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            admin = admin_auth()
            for _ in range(5):
                assert http.get("/api/v2/dags", headers=admin).status_code == 200
            scraped = parse(http.get("/metrics").text)
        assert total(scraped, "taskstore_http_requests_total", route=WORKER_ROUTE) == worker_calls
        assert total(scraped, "taskstore_http_requests_total", route="/api/v2/dags") == 5
        workers = server.worker_pids()
        each = {pid: per_process_requests(directory, pid, WORKER_ROUTE) for pid in workers}
        assert all(each.values()) and sum(each.values()) == worker_calls, each

        # A worker dies: the server starts another; what it answered still counts, its pool gauge no longer.
        victim = workers[0]
        assert (directory / f"gauge_livesum_{victim}.db").exists()
        kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (victim in server.worker_pids() or len(server.worker_pids()) < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert victim not in server.worker_pids() and len(server.worker_pids()) == 2
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            scraped = parse(http.get("/metrics").text)
        assert not (directory / f"gauge_livesum_{victim}.db").exists()
        assert (directory / f"counter_{victim}.db").exists()
        assert total(scraped, "taskstore_http_requests_total", route=WORKER_ROUTE) == worker_calls
    finally:
        server.stop()
    assert directory.is_dir(), "a directory the operator named is left as it was"


def test_serve_makes_a_private_directory_for_its_run_and_the_server_sees_a_cli_clean(
        app, migrated_database, tmp_path, ti_id, worker_auth):
    server = start_server(migrated_database, tmp_path / "server", workers=2, threads=4)
    try:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        [announced] = [line["message"] for line in lines if line["logger"] == "webapp.cli.serve"]
        directory = Path(re.search(r"(/\S+)", announced).group(1))
        assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o700
        worker_calls = calls_until_both_workers_served(server, ti_id, worker_auth(ti_id), directory, at_least=20)
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            scraped = parse(http.get("/metrics").text)
            assert total(scraped, "taskstore_http_requests_total", route=WORKER_ROUTE) == worker_calls
            assert value(scraped, "taskstore_clean_last_success_timestamp_seconds", job="expired_keys") == 0

            # taskstore clean, a process of its own (as from cron): the servers learn of it from the database.
            with httpx.Client(base_url=server.base_url, headers=worker_auth(ti_id), timeout=30) as worker:
                assert worker.put(key_url(ti_id, "old"), json={"value": 1}).status_code == 204
            expire(app, ti_id, "old")
            cleaned = subprocess.run([sys.executable, "-m", "webapp", "clean"], env=server.env, capture_output=True,
                                     text=True, timeout=120)
            assert cleaned.returncode == 0, cleaned.stderr
            for _ in range(4):  # whichever worker answers the scrape
                scraped = parse(http.get("/metrics").text)
                assert value(scraped, "taskstore_clean_last_deleted", job="expired_keys") == 1
                assert value(scraped, "taskstore_clean_last_success_timestamp_seconds", job="expired_keys") > 0
    finally:
        server.stop()
    assert not directory.exists(), "the private directory goes with the server"
