"""Behind PgBouncer in transaction pooling mode (``TASKSTORE_DB_POOLER=transaction``): a private
PgBouncer in front of the test run's PostgreSQL, and server processes that reach the database
only through it. Each transaction may run on another server connection and several clients
share each one, so whatever a connection would keep between transactions (prepared
statements, session settings) is gone or belongs to someone else.

- The scale-out cases of test_scale_out, with both server processes behind PgBouncer.
- A worker process killed with SIGKILL under a write load loses no acknowledged write.
- A write blocked by a lock answers 503 within its deadline, and writes succeed once the lock goes.
- A network path to PgBouncer that stops forwarding costs the deadline (the cancel cannot get
  through either), and calls succeed once it forwards again.

PostgreSQL pass only (TEST_DATABASE_URL=postgresql...); skipped in the others."""

from __future__ import annotations

import os
import shutil
import signal
import time

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pgbouncer import PgBouncer
from servers import kill, start_server
from test_deadlines import (
    DEADLINE,
    WRITES_AT_ONCE,
    StallingProxy,
    assert_refused_within_the_deadline,
    stored_keys,
    writes,
)
from test_faults import Load, describe
from test_scale_out import (  # noqa: F401 - collected here too, on the servers below
    clients,
    test_a_stale_admin_edit_through_one_is_refused_after_a_worker_wrote_through_the_other,
    test_a_token_minted_by_one_works_on_the_other,
    test_a_write_through_one_is_read_through_the_other_at_once,
    test_runs_created_through_one_are_listed_and_deleted_through_the_other,
)

pytestmark = [
    pytest.mark.slow,  # PgBouncer and server processes
    pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
                       reason="PgBouncer in front of PostgreSQL (PostgreSQL pass)"),
    pytest.mark.skipif(shutil.which("pgbouncer") is None and not os.path.exists("/usr/sbin/pgbouncer"),
                       reason="pgbouncer is not installed"),
]

POOLER = {"db_pooler": "transaction"}


@pytest.fixture(scope="module")
def pgbouncer(migrated_database, tmp_path_factory):
    bouncer = PgBouncer(migrated_database, tmp_path_factory.mktemp("pgbouncer")).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="module")
def two_servers(pgbouncer, tmp_path_factory):
    """test_scale_out's two server processes, both reaching PostgreSQL through PgBouncer."""
    workdir = tmp_path_factory.mktemp("scale-out-pgbouncer")
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(start_server(pgbouncer.url, workdir / name, workers=2, threads=4, **POOLER))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("server_name", ["granian", "gunicorn"])
def test_a_worker_killed_under_write_load_loses_no_acknowledged_write(
        pgbouncer, tmp_path, ti_id, worker_auth, stored_rows, server_name):
    server = start_server(pgbouncer.url, tmp_path / "server", workers=2, threads=4, server=server_name, **POOLER)
    try:
        workers_before = server.worker_pids()
        with Load(server.base_url, ti_id, worker_auth(ti_id), threads=8) as load:
            time.sleep(1.0)
            killed_at = time.monotonic()
            kill(workers_before[0], signal.SIGKILL)
            time.sleep(3.0)
        still_serving = httpx.get(server.base_url + "/health", timeout=5)
    finally:
        server.stop()

    assert still_serving.status_code == 200
    outcomes = load.outcomes
    # Thousands of the same few statements from every connection: a prepared statement or a
    # connection setting that did not survive a change of server connection would show here.
    assert [o for o in outcomes if o.status is not None and o.status != 204] == []
    assert all(o.sent < killed_at + 1.0 for o in outcomes if o.status is None)
    after = [o for o in outcomes if o.sent > killed_at + 1.0]
    assert len(after) >= 20 and all(o.status == 204 for o in after), describe(after)
    lost = load.acknowledged() - {row.key for row in stored_rows()}
    assert lost == set(), f"{len(lost)} acknowledged writes are missing: {sorted(lost)[:10]}"


def deadline_server(database_url: str, workdir):
    return start_server(database_url, workdir, threads=WRITES_AT_ONCE, db_statement_timeout_seconds=DEADLINE,
                        db_admin_statement_timeout_seconds=DEADLINE * 2, health_timeout_seconds=DEADLINE, **POOLER)


def test_writes_behind_a_held_lock_answer_503_within_the_deadline(
        pgbouncer, migrated_database, tmp_path, ti_id, worker_auth):
    server = deadline_server(pgbouncer.url, tmp_path)
    headers = worker_auth(ti_id)
    holder = create_engine(migrated_database).connect()  # straight to PostgreSQL, as a migration would
    try:
        assert [o.status for o in writes(server.base_url, ti_id, headers, "before")] == [204] * WRITES_AT_ONCE
        transaction = holder.begin()
        holder.execute(text("LOCK TABLE task_state, task_instance IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        held = writes(server.base_url, ti_id, headers, "locked")
        assert time.monotonic() - started < DEADLINE * 4  # the lock is still held: nobody waited it out
        assert_refused_within_the_deadline(held)
        transaction.rollback()
        assert stored_keys(migrated_database, "locked") == []  # nothing half-written
        # The server connections the refused writes ran on serve the next calls.
        after = writes(server.base_url, ti_id, headers, "after")
        assert [o.status for o in after] == [204] * WRITES_AT_ONCE, [o.body for o in after]
        assert httpx.get(server.base_url + "/health").status_code == 200
    finally:
        holder.close()
        server.stop()


def test_a_stalled_path_to_pgbouncer_costs_the_deadline_not_the_stall(
        pgbouncer, migrated_database, tmp_path, ti_id, worker_auth):
    proxy = StallingProxy(("127.0.0.1", pgbouncer.port))
    server = deadline_server(make_url(pgbouncer.url).set(port=proxy.port).render_as_string(hide_password=False),
                             tmp_path)
    headers = worker_auth(ti_id)
    try:
        assert [o.status for o in writes(server.base_url, ti_id, headers, "before")] == [204] * WRITES_AT_ONCE
        proxy.stall()
        stalled = writes(server.base_url, ti_id, headers, "stalled")
        assert_refused_within_the_deadline(stalled)
        proxy.resume()
        after = writes(server.base_url, ti_id, headers, "after")
        assert [o.status for o in after] == [204] * WRITES_AT_ONCE, [o.body for o in after]
        assert set(stored_keys(migrated_database, "stalled")) <= {o.key for o in stalled}
    finally:
        server.stop()
        proxy.close()
