"""Behind PgBouncer in transaction pooling mode (``TASKSTORE_DB_POOLER=transaction``): a private
PgBouncer in front of the test run's PostgreSQL, and server processes that reach the database
only through it. Each transaction may run on another server connection and several clients
share each one, so whatever a connection would keep between transactions (prepared
statements, session settings) is gone or belongs to someone else.

- A worker process killed with SIGKILL under a write load loses no acknowledged write.
- A write blocked by a lock answers 503 within its deadline, and writes succeed once the lock goes.
- A network path to PgBouncer that stops forwarding costs the deadline (the cancel cannot get
  through either), and calls succeed once it forwards again.

PostgreSQL pass only (the ``pgbouncer`` fixture skips in the others). test_scale_out runs its
cases through PgBouncer too."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from faults import (
    DEADLINE,
    WRITES_AT_ONCE,
    Load,
    StallingProxy,
    assert_refused_within_the_deadline,
    deadline_server,
    describe,
    stored_keys,
    writes,
)
from servers import kill, start_server

pytestmark = pytest.mark.slow  # PgBouncer and server processes; the pgbouncer fixture skips outside the PostgreSQL pass

POOLER = {"db_pooler": "transaction"}


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


def test_writes_behind_a_held_lock_answer_503_within_the_deadline(
        pgbouncer, migrated_database, tmp_path, ti_id, worker_auth):
    server = deadline_server(pgbouncer.url, tmp_path, **POOLER)
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
                             tmp_path, **POOLER)
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
