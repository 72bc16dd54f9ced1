"""Export and import: a SQLite deployment holding every kind of row, exported and imported into
PostgreSQL and MariaDB, compares row by row; importing twice changes nothing; a dump from a
newer schema is refused. The SQLite pass runs it (the source must be SQLite), against throw-away
databases on the PostgreSQL and MariaDB servers (skipped where one is not reachable)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from support import key_url, settings_for, store_url, throwaway_database
from webapp import create_app
from webapp.extensions import db
from webapp.models import utcnow

SERVERS = {
    "postgresql": os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
# Database-specific ids and bookkeeping: everything else must match row for row.
SKIPPED_COLUMNS = {"id", "dag_run_id", "asset_id", "user_id", "last_used_at"}
SKIPPED_TABLES = {"login_failure", "user_session"}  # a process's own: not moved


def reachable(url: str) -> bool:
    try:
        create_engine(url).connect().close()
    except OperationalError:
        return False
    return True


@pytest.fixture
def every_kind_of_row(app, client, admin_auth, worker_auth, runner, make_user):
    """Runs with mapped and retried task instances, keys (expiring, never, set aside), assets
    and their keys, history of both kinds, people, API keys and the audit log."""
    admin = admin_auth()
    created = client.post("/api/v2/dags/etl/dagRuns", headers=admin, json={
        "dag_run_id": "r1", "tasks": [{"task_id": "load", "outlets": ["orders"]},
                                      {"task_id": "copy", "map_indexes": [0, 1], "map_keys": ["a", "b"]}]})
    ids = {(ti["task_id"], ti["map_index"]): ti["id"] for ti in created.json["task_instances"]}
    client.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/load", headers=admin, json={"state": "running"})
    client.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/load", headers=admin, json={"state": "up_for_retry"})
    retry = client.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/load", headers=admin, json={"state": "running"})
    load = retry.json["id"]
    expires = (utcnow() + timedelta(days=3)).isoformat()
    client.put(key_url(load, "job/id"), headers=worker_auth(load), json={"value": {"id": 42}, "expires_at": expires})
    client.put(key_url(load, "forever"), headers=worker_auth(load), json={"value": [1, 2.5, "é"], "expires_at": None})
    for index in (0, 1):
        ti = ids[("copy", index)]
        client.put(key_url(ti, "ckpt"), headers=worker_auth(ti), json={"value": index})
    client.post("/api/v2/dags/etl/dagRuns/r1/taskInstances/copy/expand", headers=admin,
                json={"map_indexes": [0, 1], "map_keys": ["b", "c"]})  # "a"'s checkpoint set aside (parked)
    client.put(store_url("edited", run="r1", task="load"), headers=admin, json={"value": "by a person"})
    client.post("/api/v2/assets", headers=admin, json={"name": "orders", "uri": "s3://orders"})
    client.put("/execution/store/asset/by-name/value?name=orders&key=watermark", headers=worker_auth(load),
               json={"value": "2026-12-01"})
    asset_id = client.get("/api/v2/assets", headers=admin).json["assets"][0]["id"]
    client.put(f"/api/v2/assets/{asset_id}/state-store/by-hand", headers=admin, json={"value": 1})
    make_user("dana", "editor")
    runner.invoke(args=["users", "disable", "dana"])


def contents(url: str) -> dict[str, list]:
    engine = create_engine(url)
    try:
        found = {}
        with engine.connect() as connection:
            for table in sorted({table.name for table in db.metadata.sorted_tables} - SKIPPED_TABLES):
                columns = [c["name"] for c in inspect(engine).get_columns(table) if c["name"] not in SKIPPED_COLUMNS]
                quote = engine.dialect.identifier_preparer.quote
                rows = connection.execute(text(f"SELECT {', '.join(quote(c) for c in columns)} FROM {table}")).all()
                found[table] = sorted(repr(tuple(_normal(value) for value in row)) for row in rows)
        return found
    finally:
        engine.dispose()


def _normal(value):
    """One representation per database: naive UTC datetimes (SQLite's raw text too), UUIDs as
    32 hex digits, a parked key's place (-2 - its row id) as "parked"."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] in " T":
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, int) and not isinstance(value, bool) and value < -1:
        return "parked"
    if hasattr(value, "isoformat"):
        return value.replace(tzinfo=None).isoformat()
    if hasattr(value, "hex") and not isinstance(value, (bytes, int, float, str)):
        return value.hex
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        return value.replace("-", "")
    return value


def export_dump(app) -> str:
    result = app.test_cli_runner().invoke(args=["export", "--with-credentials"])
    assert result.exit_code == 0, result.output
    return result.stdout


def migrated(url: str, instance):
    target = create_app(settings_for(url), instance_path=str(instance))
    from flask_migrate import upgrade

    with target.app_context():
        upgrade()
    return target


def newest_migration() -> str:
    """The head revision of the migrations the package ships: what a migrated database records."""
    from alembic.script import ScriptDirectory

    from webapp import migrations

    return ScriptDirectory(os.path.dirname(migrations.__file__)).get_current_head()


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="the SQLite pass: the source is SQLite")
@pytest.mark.parametrize("server", list(SERVERS))
def test_a_sqlite_deployment_moves_to_a_server_row_for_row_and_twice_is_a_no_op(
        app, migrated_database, every_kind_of_row, tmp_path, server):
    if not reachable(SERVERS[server]):
        pytest.skip(f"{server} is not reachable at {SERVERS[server]}")
    dump = export_dump(app)
    assert json.loads(dump.splitlines()[0])["schema"] == newest_migration()
    with throwaway_database(SERVERS[server]) as url:
        target = migrated(url, tmp_path)
        first = target.test_cli_runner().invoke(args=["import", "-"], input=dump)
        assert first.exit_code == 0 and "were there already" in first.output, first.output
        with target.app_context():
            db.engine.dispose()
        source_rows, target_rows = contents(migrated_database), contents(url)
        assert source_rows == target_rows
        again = target.test_cli_runner().invoke(args=["import", "-"], input=dump)
        assert again.exit_code == 0 and again.output.startswith("Imported nothing"), again.output
        assert contents(url) == target_rows
        with target.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_dump_from_a_newer_schema_is_refused_and_writes_nothing(app, every_kind_of_row, table_contents):
    lines = export_dump(app).splitlines()
    header = json.loads(lines[0])
    header["schema"] = "9999"
    before = table_contents()
    result = app.test_cli_runner().invoke(args=["import", "-"], input="\n".join([json.dumps(header), *lines[1:]]))
    assert result.exit_code == 1 and "newer schema (9999)" in result.output
    assert table_contents() == before


def test_importing_into_the_same_database_adds_nothing(app, every_kind_of_row, table_contents):
    dump = export_dump(app)
    before = table_contents()
    result = app.test_cli_runner().invoke(args=["import", "-"], input=dump)
    assert result.exit_code == 0 and result.output.startswith("Imported nothing")
    assert table_contents() == before


def test_export_of_some_dags_only(app, every_kind_of_row, client, admin_auth):
    client.post("/api/v2/dags/other_dag/dagRuns", headers=admin_auth(), json={"dag_run_id": "x"})
    records = [json.loads(line) for line in app.test_cli_runner().invoke(args=["export", "--dag", "et?"])
               .stdout.splitlines()[1:]]
    assert {r["dag_id"] for r in records if r["type"] == "dag_run"} == {"etl"}
    assert not any(r["type"] in ("user", "api_key") for r in records)  # credentials only when asked


def test_a_line_that_is_no_record_is_a_one_line_error(app):
    header = json.dumps({"type": "header", "format": "taskstore-dump", "version": 1, "schema": "0001"})
    result = app.test_cli_runner().invoke(args=["import", "-"], input=header + "\nnot json\n")
    assert result.exit_code == 1 and "line 2 is not a record" in result.output

