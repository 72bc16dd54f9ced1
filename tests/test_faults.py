"""Faults, each bounded in time and cleaning up after itself.

- PostgreSQL restarted in the middle of a write load. The shared PostgreSQL of the test
  run is never touched: the test starts a PRIVATE PostgreSQL 15 cluster (initdb into a
  temporary folder, its own port and socket folder), migrates it, serves the app against it
  and restarts that cluster. It runs in the PostgreSQL pass of the suite
  (TEST_DATABASE_URL=postgresql://...), where CI has PostgreSQL installed, and skips in the
  other passes: its result does not depend on the test database, so running it three
  times would cost time and prove nothing more.
- A worker process killed with SIGKILL in the middle of a write load, under either server: every pass
  (and through PgBouncer in the PostgreSQL pass).
- SQLite under concurrent writers in several processes never answers 500: SQLite pass only.

Every load records, per request, the time before sending and after the answer, the status
(or the transport error), so the checks can speak of "during the outage" and "after".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from faults import Load, describe, reason
from pgbouncer import PgBouncer
from servers import Outcome, kill, run_threads, server_env, start_server, timed
from support import free_port, key_url, settings_for, store_url

pytestmark = pytest.mark.slow  # server processes under load, a private PostgreSQL cluster

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


# --- PostgreSQL restarted under load --------------------------------------------------------


class PrivatePostgres:
    def __init__(self, root: Path):
        self.root, self.data, self.sockets = root, root / "data", root / "sockets"
        self.port = free_port()
        self.log = root / "postgres.log"

    def _as_postgres(self, *command, timeout: float = 60) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self.sockets.mkdir(parents=True)
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.sockets, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=100"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def private_postgres():
    root = Path(tempfile.mkdtemp(prefix="taskstore-pg-", dir="/tmp"))
    cluster = PrivatePostgres(root)
    started = False
    try:
        cluster.init()
        cluster.start()
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def seed_task_instance(database_url: str, instance_path: Path) -> tuple[str, dict]:
    """A DAG run with one task instance, and a worker token for it."""
    from webapp import create_app
    from webapp import runs as runs_service
    from webapp.auth import tokens
    from webapp.extensions import db

    app = create_app(settings_for(database_url), instance_path=str(instance_path))
    with app.app_context():
        _run, (ti,) = runs_service.create_dag_run("dag", "run_1", [runs_service.TaskSpec("task", None)])
        db.session.commit()
        token, _ = tokens.issue(ti.id)
        ti_id = str(ti.id)
        db.session.remove()
        db.engine.dispose()
    return ti_id, {"Authorization": f"Bearer {token}"}


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"),
                    reason="runs in the PostgreSQL pass (TEST_DATABASE_URL=postgresql://...); "
                           "it uses a private cluster")
@pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason=f"{PG_BIN}/initdb is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run PostgreSQL as the postgres user")
@pytest.mark.parametrize("path", ["direct", "pgbouncer"])
def test_postgresql_restart_under_write_load(tmp_path, path):
    """Through PgBouncer a request may wait in its queue for the restarted server instead of
    being refused: the outage need not show as a 503 there, but every other check holds."""
    if path == "pgbouncer" and not PgBouncer.installed():
        pytest.skip("pgbouncer is not installed")
    with private_postgres() as cluster, contextlib.ExitStack() as stack:
        admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE taskstore"))
        admin.dispose()
        url = cluster.url("taskstore")
        env = server_env(url, tmp_path)
        migrated = subprocess.run([sys.executable, "-m", "webapp", "db", "upgrade"], env=env,
                                  capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        ti, auth = seed_task_instance(url, tmp_path)
        served_url, settings = url, {}
        if path == "pgbouncer":
            bouncer = PgBouncer(url, tmp_path / "pgbouncer").start()
            stack.callback(bouncer.stop)
            served_url, settings = bouncer.url, {"db_pooler": "transaction"}

        server = start_server(served_url, tmp_path / "server", workers=2, threads=4, **settings)
        try:
            with Load(server.base_url, ti, auth, threads=8) as load:
                time.sleep(1.0)
                outage_began = time.monotonic()
                cluster.stop("fast")
                time.sleep(2.0)  # the database is down: every request meanwhile must be a quick 503
                cluster.start()
                restarted = time.monotonic()
                time.sleep(4.0)  # after 2 s every request must be acknowledged again
            outcomes = load.outcomes
        finally:
            server.stop()

        assert outcomes, "no requests were made"
        unexpected = [o for o in outcomes if o.status not in (204, 503)]
        assert unexpected == [], describe(unexpected)
        not_json_503 = [o for o in outcomes if o.status == 503 and reason(o) != "database_unavailable"]
        assert not_json_503 == [], describe(not_json_503)
        during = [o for o in outcomes if outage_began < o.sent < restarted]
        assert during, "no request was sent during the outage"
        if path == "direct":
            assert any(o.status == 503 for o in during), "the outage was not seen"
        slowest = max(outcomes, key=lambda o: o.latency)
        assert slowest.latency < 10, describe([slowest])  # quick answers, never a hang
        before = [o for o in outcomes if o.answered < outage_began]
        assert before and all(o.status == 204 for o in before), describe(before)
        after = [o for o in outcomes if o.sent > restarted + 2]
        assert len(after) >= 20 and all(o.status == 204 for o in after), describe(
            [o for o in after if o.status != 204])  # recovered by itself

        engine = create_engine(url)
        with engine.connect() as connection:
            stored = set(connection.execute(text("SELECT key FROM task_state")).scalars())
        engine.dispose()
        lost = load.acknowledged() - stored
        assert lost == set(), f"{len(lost)} acknowledged writes are missing: {sorted(lost)[:10]}"


# --- a worker process killed with SIGKILL, under either server -----------------------------


@pytest.mark.parametrize("server_name", ["granian", "gunicorn"])
def test_a_worker_killed_with_sigkill_loses_no_acknowledged_write(served_database, tmp_path, ti_id, worker_auth,
                                                                   stored_rows, server_name):
    """Directly, and through PgBouncer in the PostgreSQL pass, where thousands of the same few
    statements from every connection would show a prepared statement or a connection setting
    that did not survive a change of server connection."""
    database_url, settings = served_database
    server = start_server(database_url, tmp_path / "server", workers=2, threads=4, server=server_name, **settings)
    try:
        workers_before = server.worker_pids()
        assert len(workers_before) == 2
        with Load(server.base_url, ti_id, worker_auth(ti_id), threads=8) as load:
            time.sleep(1.0)
            killed_at = time.monotonic()
            kill(workers_before[0], signal.SIGKILL)
            time.sleep(3.0)
        outcomes = load.outcomes
        workers_after = server.worker_pids()
        still_serving = httpx.get(server.base_url + "/health", timeout=5)
    finally:
        server.stop()

    assert workers_before[0] not in workers_after and len(workers_after) == 2  # the server replaced it
    assert still_serving.status_code == 200
    # A request in flight on the killed worker gets no answer (the connection drops); no request
    # gets an error status.
    answered = [o for o in outcomes if o.status is not None]
    assert [o for o in answered if o.status != 204] == []
    dropped = [o for o in outcomes if o.status is None]
    assert all(o.sent < killed_at + 1.0 for o in dropped), describe(dropped)
    after = [o for o in outcomes if o.sent > killed_at + 1.0]
    assert len(after) >= 20 and all(o.status == 204 for o in after), describe(after)

    stored = {row.key for row in stored_rows()}
    lost = load.acknowledged() - stored
    assert lost == set(), f"{len(lost)} acknowledged writes are missing: {sorted(lost)[:10]}"


# --- SQLite with writers in several processes -----------------------------------------------


@pytest.mark.skipif(TEST_DATABASE_URL != "", reason="SQLite pass only (the test database must be SQLite)")
def test_sqlite_with_writers_in_several_processes_never_answers_500(migrated_database, tmp_path, make_run,
                                                                    worker_auth, admin_auth):
    assert migrated_database.startswith("sqlite:")
    ids = make_run(tasks=(("task", None), ("mapped", [0, 1])))
    tis = [ids["task"], ids[("mapped", 0)], ids[("mapped", 1)]]
    admin = admin_auth("admin")
    servers = [start_server(migrated_database, tmp_path / f"server-{n}", workers=2, threads=4) for n in range(2)]
    seconds, threads = 3.0, 16
    try:
        def worker(n: int, start: threading.Event) -> list[Outcome]:
            ti = tis[n % len(tis)]
            done = []
            with httpx.Client(base_url=servers[n % 2].base_url, timeout=30) as client:
                start.wait()
                deadline, i = time.monotonic() + seconds, 0
                auth = worker_auth(ti)
                while time.monotonic() < deadline and i < 400:
                    kind = (n + i) % 10
                    if kind < 5:  # distinct keys
                        done.append(timed("put", f"{n}/{i}", lambda: client.put(
                            key_url(ti, f"{n}/{i}"), headers=auth, json={"value": [n, i]})))
                    elif kind < 7:  # one hot key per task instance
                        done.append(timed("put hot", "hot", lambda: client.put(
                            key_url(ti, "hot"), headers=auth, json={"value": [n, i]})))
                    elif kind == 7:
                        done.append(timed("delete", "hot", lambda: client.delete(key_url(ti, "hot"), headers=auth)))
                    elif kind == 8:  # the admin API: read, then a versioned update (several statements)
                        done.append(timed("admin put", "shared", lambda: client.put(
                            store_url("shared"),
                            headers=admin, json={"value": [n, i], "expires_at": None})))
                    elif i % 20 == 9:  # runs created and deleted: multi-row transactions
                        run = f"r{n}-{i}"
                        done.append(timed("create run", run, lambda: client.post(
                            "/api/v2/dags/load/dagRuns", headers=admin,
                            json={"dag_run_id": run, "tasks": [{"task_id": "t", "map_indexes": [0, 1, 2]}]})))
                        done.append(timed("delete run", run, lambda: client.delete(
                            f"/api/v2/dags/load/dagRuns/{run}", headers=admin)))
                    else:
                        done.append(timed("clear", None, lambda: client.delete(key_url(ti), headers=auth)))
                    i += 1
            return done

        outcomes = run_threads(threads, worker)
    finally:
        for server in servers:
            server.stop()

    assert len(outcomes) >= threads * 10
    # Not even a 503: with a 5 s busy timeout and short transactions, no writer waits that long.
    server_errors = [o for o in outcomes if o.status is None or o.status >= 500]
    assert server_errors == [], describe(server_errors)
    ok = {"put": 204, "put hot": 204, "delete": 204, "admin put": (200, 201), "create run": 201,
          "delete run": 204, "clear": 204}
    wrong = [o for o in outcomes if o.status not in (ok[o.what] if isinstance(ok[o.what], tuple) else (ok[o.what],))]
    assert wrong == [], describe(wrong)
