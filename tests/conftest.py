"""Fixtures: every test gets a fresh app on an empty, migrated database.

By default the database is a SQLite file in a temporary folder. With
``TEST_DATABASE_URL=postgresql://...`` or ``mysql+pymysql://...`` the same suite runs on a
throw-away database created on that server for this run and dropped afterwards.

Where things are, for a new test:

- fixtures (here): ``app``, ``client``, ``runner``, ``make_app`` (an app with other settings);
  data: ``make_run``, ``ti_id``, ``seeded``, ``set_ti_state``, ``worker_put`` (a worker writes a
  key); credentials: ``auth`` (worker-token headers for ``ti_id``), ``worker_auth(ti)``,
  ``admin_auth(role)``, and for the admin UI ``make_user`` and ``login_as(role)`` (logs
  ``client`` in through the login form; ``support.log_in`` does it for another client);
  checks: ``stored_rows``, ``table_contents``, ``sql_statements``; real processes:
  ``live_server`` (``taskstore serve``), ``worker_http``.
- plain helpers (``tests/support.py``): URLs (``key_url``, ``store_url``, ``ti_page_url``),
  ``log_in``, ``csrf_token``, ``table_rows``, ``put_key``, ``detail``, constants. Import them
  from ``support``; a test module never imports another test module or this file.
- server processes for scale-out and fault tests: ``tests/servers.py``; browser fixtures:
  ``tests/e2e/conftest.py``.

Quick inner loop: ``pytest -m "not slow"`` leaves out every test marked ``slow``: those on the
live server (any test using ``live_server``, directly or through another fixture, is marked by
``pytest_collection_modifyitems`` below), the browser tests (``tests/e2e``), the modules that
start server processes or build the wheel (``pytestmark = pytest.mark.slow`` at their top:
test_faults, test_scale_out, test_serve_demo, test_packaging) and the schemathesis run of
test_fuzz. A new test on ``live_server`` is marked by itself; mark a new module that starts
processes the same way. ``pytest`` with no ``-m`` runs everything, as CI does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select

from pgbouncer import PgBouncer
from servers import start_server
from support import PASSWORD, log_in, put_key, settings_for, throwaway_database
from webapp import assets, create_app
from webapp import runs as runs_service
from webapp.auth import api_keys, tokens, users
from webapp.extensions import db
from webapp.models import TaskState

# The suite must not pick up a developer's own configuration.
for _name in [name for name in os.environ if name.upper().startswith("TASKSTORE_")]:
    del os.environ[_name]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items):
    """``slow``: every test on the live server (directly or through another fixture) and every
    browser test, so ``pytest -m "not slow"`` runs in-process tests only."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()) or E2E in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "taskstore.db")
        return
    with throwaway_database(server_url) as url:
        yield url


@pytest.fixture(scope="session")
def pgbouncer(migrated_database, tmp_path_factory):
    """A private PgBouncer in transaction mode in front of the test database (PostgreSQL pass
    only; skipped in the others, and where pgbouncer is not installed)."""
    if not migrated_database.startswith("postgresql"):
        pytest.skip("PgBouncer in front of PostgreSQL (PostgreSQL pass)")
    if not PgBouncer.installed():
        pytest.skip("pgbouncer is not installed")
    bouncer = PgBouncer(migrated_database, tmp_path_factory.mktemp("pgbouncer")).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session", params=["direct", "pgbouncer"])
def served_database(request, migrated_database) -> tuple[str, dict]:
    """What a server process under test is given: the database URL and its settings. The test
    database itself, and, in the PostgreSQL pass, the same database through the ``pgbouncer``
    fixture (skipped in the other passes)."""
    if request.param == "direct":
        return migrated_database, {}
    return request.getfixturevalue("pgbouncer").url, {"db_pooler": "transaction"}


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def migrated_database(database_url, instance_path):
    """The schema comes from the migrations, as in production (never create_all)."""
    from flask_migrate import upgrade

    app = create_app(settings_for(database_url), instance_path=str(instance_path))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def make_app(migrated_database, instance_path):
    """Build an app with extra settings; every app made is torn down with the test."""
    made = []

    def _make(**overrides):
        app = create_app({**settings_for(migrated_database), **overrides}, instance_path=str(instance_path))
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield _make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    # Emptying the tables is bookkeeping, not a call under test: a busy CI database may take
    # longer than a worker's deadline over it.
    cleanup = create_app({**settings_for(migrated_database), "db_statement_timeout_seconds": 120},
                         instance_path=str(instance_path))
    with cleanup.app_context():
        # Every table the models know, children first: new tables are emptied too.
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_run(app):
    """Create a DAG run; returns {task_id or (task_id, map_index): ti_id}."""

    def _make(dag_id="dag", run_id="run_1", tasks=(("task", None),)):
        with app.app_context():
            specs = [runs_service.TaskSpec(task_id, indexes) for task_id, indexes in tasks]
            _run, instances = runs_service.create_dag_run(dag_id, run_id, specs)
            db.session.commit()
            found = {}
            for ti in instances:
                found[(ti.task_id, ti.map_index)] = str(ti.id)
                if ti.map_index == -1:
                    found[ti.task_id] = str(ti.id)
            return found

    return _make


@pytest.fixture
def ti_id(make_run) -> str:
    return make_run()["task"]


@pytest.fixture
def set_ti_state(app):
    """Move a task instance to a state (e.g. "running", so its UI page polls), straight in the
    database as the scheduler's state change does, without clearing its keys."""

    def _set(dag_id: str, run_id: str, task_id: str, state: str | None, map_index: int = -1) -> None:
        with app.app_context():
            runs_service.set_state(runs_service.get_task_instance(dag_id, run_id, task_id, map_index), state,
                                   clear_on_success=False)
            db.session.commit()

    return _set


@pytest.fixture
def issue_token(app):
    """A worker token for a TI; ``now`` back-dates it, to test refresh and expiry."""

    def _issue(for_ti: str, now=None) -> str:
        with app.app_context():
            return tokens.issue(for_ti, now=now)[0]

    return _issue


@pytest.fixture
def worker_auth(issue_token):
    """Authorization headers for a worker token of the given TI."""

    def _headers(for_ti: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(for_ti)}"}

    return _headers


@pytest.fixture
def api_key(app):
    """``api_key(role="admin")``: the secret of a fresh API key of that role."""

    def _make(role: str = "admin") -> str:
        with app.app_context():
            _record, key = api_keys.create(f"test-{role}-{secrets.token_hex(3)}", role)
            db.session.commit()
        return key

    return _make


@pytest.fixture
def admin_auth(api_key):
    """Authorization headers for a fresh admin API key (or another role)."""
    return lambda role="admin": {"Authorization": f"Bearer {api_key(role)}"}


@pytest.fixture
def service_key(api_key) -> str:
    """A fresh API key of role service: what Airflow's backend, the accessor and the listener use."""
    return api_key("service")


@pytest.fixture
def admin_get(client, admin_auth):
    """``admin_get(path, **query)``: GET on the admin API as an admin, asserting 200; the JSON."""
    headers = admin_auth()

    def _get(path: str, **query):
        response = client.get(path, headers=headers, query_string=query)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.get_json()

    return _get


@pytest.fixture
def auth(worker_auth, ti_id):
    """Worker-token headers for the default task instance."""
    return worker_auth(ti_id)


@pytest.fixture
def worker_put(client, worker_auth):
    """``worker_put(ti, key, value, expires_at=None)``: a worker writes a key (the worker API,
    in-process, with a token of that TI); checks the 204. ``expires_at``: a datetime or an ISO
    8601 string. tests/e2e overrides it to write through the live server instead."""

    def _put(ti: str, key: str, value, expires_at: datetime | str | None = None) -> None:
        put_key(client, worker_auth(ti), ti, key, value, expires_at)

    return _put


@pytest.fixture
def seeded(worker_put, ti_id, stored_rows):
    """One key already stored for the TI, so a call that wrongly wrote, deleted or cleared shows."""
    worker_put(ti_id, "seed", "secret-seed-value")
    rows = stored_rows()
    assert [(row.key, row.value) for row in rows] == [("seed", '"secret-seed-value"')]
    return rows


@pytest.fixture
def stored_rows(app):
    """All task_state rows, read straight from the table."""

    def _rows():
        with app.app_context():
            return db.session.execute(
                select(TaskState.task_id, TaskState.map_index, TaskState.key, TaskState.value,
                       TaskState.expires_at, TaskState.version).order_by(TaskState.id)
            ).all()

    return _rows


BOOKKEEPING = {("api_key", "last_used_at"), ("user_session", "last_seen_at")}


@pytest.fixture
def table_contents(app):
    """Every row of every table the models know, {table: sorted row reprs}: compare a call
    before and after to show that it changed nothing. Bookkeeping that any authenticated call
    updates (when an API key or a session was last used) is left out."""

    def _contents() -> dict[str, list[str]]:
        with app.app_context():
            found = {}
            for table in db.metadata.sorted_tables:
                columns = [column for column in table.columns if (table.name, column.name) not in BOOKKEEPING]
                found[table.name] = sorted(repr(tuple(row)) for row in db.session.execute(select(*columns)).all())
            db.session.remove()
        return found

    return _contents


# --- the admin UI -------------------------------------------------------------------------


@pytest.fixture
def make_user(app):
    """``make_user(username="alice", role="viewer")`` creates a UI user with ``support.PASSWORD``;
    returns the username. ``dags``/``assets``: the name patterns a limited person may see."""

    def _make(username: str = "alice", role: str = "viewer", password: str = PASSWORD, *,
              dags: str | None = None, assets: str | None = None) -> str:
        with app.app_context():
            user = users.create(username, password, role)
            if dags is not None or assets is not None:
                users.set_limits(user, dags=dags, assets=assets, actor="test")
            db.session.commit()
        return username

    return _make


@pytest.fixture
def login_as(client, make_user):
    """``login_as(role, username=role)`` creates a user with that role and logs ``client`` in
    through the login form (CSRF on, as in production); returns ``client``."""

    def _login(role: str, username: str | None = None):
        response = log_in(client, make_user(username or role, role))
        assert response.status_code == 302, response.text
        return client

    return _login


@pytest.fixture
def sql_statements(app):
    """Count the SQL statements the app sends while the block runs."""

    @contextlib.contextmanager
    def _count():
        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args):
            statements.append(statement)

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return _count


@pytest.fixture(scope="session")
def live_server(migrated_database, tmp_path_factory):
    """The service as users run it: ``taskstore serve`` (gunicorn) in its own process."""
    server = start_server(migrated_database, tmp_path_factory.mktemp("live-server"))
    yield server.base_url
    server.stop()


@pytest.fixture
def worker_http(live_server, worker_auth):
    """A keep-alive HTTP client per thread, authorized for one TI (httpx directly, so every
    status the server sends is seen; no client-side retries hide a 503)."""
    made: list[httpx.Client] = []
    lock = threading.Lock()

    def _make(ti: str) -> httpx.Client:
        client = httpx.Client(base_url=live_server, headers=worker_auth(ti), timeout=30)
        with lock:
            made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


@pytest.fixture
def make_asset(app):
    """``make_asset(name, uri=None, group="")`` registers an asset; returns its id."""

    def _make(name: str, uri: str | None = None, group: str = "") -> int:
        with app.app_context():
            asset = assets.create(name, uri or f"uri://{name}", group)
            db.session.commit()
            return asset.id

    return _make


@pytest.fixture
def asset_put(client):
    """``asset_put(headers, name, key, value)``: a worker (or watcher) writes an asset's key
    through the worker API, as Airflow's Task SDK does."""

    def _put(headers: dict, name: str, key: str, value) -> None:
        response = client.put("/execution/store/asset/by-name/value", query_string={"name": name, "key": key},
                              json={"value": value}, headers=headers)
        assert response.status_code == 204, response.text

    return _put
