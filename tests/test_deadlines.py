"""Deadlines on the database: a database that stalls instead of refusing costs a caller the
deadline (plus a second), answered 503 with Retry-After, never the length of the stall; nothing
is half-written and calls succeed again as soon as the stall ends.

- Another session holds the tables locked (PostgreSQL) or a row (MariaDB) longer than the
  deadline while workers write through a real server process.
- The network path to the database stops forwarding (a TCP proxy in the test that swallows
  everything while still accepting: what a frozen server or a partition looks like to the
  client, with the kernel still acknowledging the bytes): the watchdog (PostgreSQL) or the
  socket timeout (MariaDB) ends the call, and /health says which check failed.
Each test runs in the pass of its database (TEST_DATABASE_URL) and skips in the others; in the
PostgreSQL pass the server-process tests run a second time through PgBouncer in transaction
mode, where the worker's deadline is a cancel sent through it."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, func, insert, literal, select, text
from sqlalchemy.engine import make_url

from faults import (
    DEADLINE,
    StallingProxy,
    assert_refused_within_the_deadline,
    deadline_server,
    stored_keys,
    writes,
)
from webapp.models import TaskInstance, TaskState

pytestmark = pytest.mark.slow  # server processes, held locks and a stalling proxy

BACKEND = make_url(os.environ["TEST_DATABASE_URL"]).get_backend_name() if os.environ.get("TEST_DATABASE_URL") \
    else "sqlite"
SERVER_BACKEND = pytest.mark.skipif(BACKEND not in ("postgresql", "mysql"),
                                    reason="a database server's deadlines (PostgreSQL and MariaDB passes)")


@SERVER_BACKEND
def test_writes_behind_a_held_lock_answer_503_within_the_deadline_and_succeed_once_it_goes(
        migrated_database, served_database, tmp_path, ti_id, worker_auth):
    database_url, settings = served_database  # through PgBouncer too: the deadline is then a cancel
    server = deadline_server(database_url, tmp_path, **settings)
    headers = worker_auth(ti_id)
    holder = create_engine(migrated_database).connect()
    try:
        assert writes(server.base_url, ti_id, headers, "before", count=2)[0].status == 204  # warm pools
        transaction = holder.begin()
        if BACKEND == "postgresql":
            # A migration, a long admin transaction or VACUUM FULL: every table locked.
            holder.execute(text("LOCK TABLE task_state, task_instance IN ACCESS EXCLUSIVE MODE"))
            prefix = "locked"
        else:
            # A row lock on the key every writer wants (InnoDB locks rows, not tables).
            ti = TaskInstance.__table__
            holder.execute(insert(TaskState).from_select(
                ["dag_run_id", "dag_id", "run_id", "task_id", "map_index", "key", "value", "version", "updated_at"],
                select(ti.c.dag_run_id, ti.c.dag_id, ti.c.run_id, ti.c.task_id, ti.c.map_index,
                       literal("locked-0"), literal("1"), literal(1), func.now(6))
                .where(ti.c.id == uuid.UUID(ti_id))))
            prefix = "locked"
        started = time.monotonic()
        held = writes(server.base_url, ti_id, headers, prefix, count=1 if BACKEND == "mysql" else 6)
        assert time.monotonic() - started < DEADLINE * 4  # the lock is still held: nobody waited it out
        assert_refused_within_the_deadline(held)
        transaction.rollback()  # the lock goes (and MariaDB's uncommitted row with it)
        assert stored_keys(migrated_database, prefix) == []  # nothing half-written
        after = writes(server.base_url, ti_id, headers, "after")
        assert [outcome.status for outcome in after] == [204] * 6
        assert httpx.get(server.base_url + "/health").status_code == 200
    finally:
        holder.close()
        server.stop()


@SERVER_BACKEND
def test_a_stalled_network_path_costs_the_deadline_not_the_stall(migrated_database, served_database, tmp_path, ti_id,
                                                                 worker_auth):
    """Through PgBouncer too (the path to it stalls): the cancel cannot get through either, and
    must not hold up the socket's close."""
    served_url, settings = served_database
    url = make_url(served_url)
    proxy = StallingProxy((url.host or "127.0.0.1", url.port or (5432 if BACKEND == "postgresql" else 3306)))
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = deadline_server(through_proxy, tmp_path, **settings)
    headers = worker_auth(ti_id)
    try:
        assert [o.status for o in writes(server.base_url, ti_id, headers, "before", count=4)] == [204] * 4
        proxy.stall()
        stalled = writes(server.base_url, ti_id, headers, "stalled")
        assert_refused_within_the_deadline(stalled)
        started = time.monotonic()
        health = httpx.get(server.base_url + "/health", timeout=30)
        assert health.status_code == 503 and time.monotonic() - started <= DEADLINE + 1.5
        assert health.json()["detail"]["field"] == "database" and "checks" in health.json()["detail"]
        proxy.resume()
        # Connections the deadline closed are replaced; the next calls work.
        after = writes(server.base_url, ti_id, headers, "after")
        assert [outcome.status for outcome in after] == [204] * 6, [o.body for o in after]
        assert httpx.get(server.base_url + "/health").status_code == 200
        # A write answered 503 may or may not have landed (the reply was lost); none other did.
        assert set(stored_keys(migrated_database, "stalled")) <= {o.key for o in stalled}
    finally:
        server.stop()
        proxy.close()


def test_the_deadline_is_set_on_every_connection(app, migrated_database):
    """The connection defaults every pooled connection starts with, read back from the server."""
    from webapp.extensions import db

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            return
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                shown = connection.exec_driver_sql("SHOW statement_timeout").scalar(), \
                    connection.exec_driver_sql("SHOW lock_timeout").scalar()
                assert shown == ("5s", "5s")
            else:
                shown = connection.exec_driver_sql(
                    "SELECT @@max_statement_time, @@innodb_lock_wait_timeout").first()
                assert (float(shown[0]), int(shown[1])) == (5.0, 5)
        # The session's transactions (UI, admin API, CLI) run under the longer deadline, and a
        # connection goes back to the pool with the worker's.
        if engine.dialect.name == "postgresql":
            assert db.session.execute(text("SHOW statement_timeout")).scalar() == "30s"
        else:
            assert float(db.session.execute(text("SELECT @@max_statement_time")).scalar()) == 30.0
        db.session.commit()
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "5s"
            else:
                assert float(connection.exec_driver_sql("SELECT @@max_statement_time").scalar()) == 5.0


def test_sqlite_durability_is_a_setting(make_app):
    from webapp.extensions import db

    app = make_app(sqlite_synchronous="full")
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only")
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_health_answers_its_checks(client):
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "checks": {"database": "ok"}}

