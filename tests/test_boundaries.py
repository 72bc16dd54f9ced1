"""Boundaries a newcomer can rely on: the worker client imports nothing of the service, the
API docs need no UI, and every entry point applies the store's rules (keys, history)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flask import Flask
from sqlalchemy import select, update

from webapp import store
from webapp.extensions import db
from webapp.models import KeyChange, TaskState

KEYS = "/api/v2/dags/dag/dagRuns/run_1/taskInstances/task/state-store"


def test_the_worker_client_imports_neither_flask_nor_sqlalchemy():
    probe = ("import sys, webapp.client; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('flask', 'sqlalchemy', 'jinja2', 'pydantic_settings', 'werkzeug')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_api_docs_render_without_the_ui(app):
    from webapp.api import core, health, openapi, worker
    from webapp.http import CONVERTERS

    bare = Flask("webapp", template_folder=app.template_folder, static_folder=app.static_folder)
    bare.config.update(app.config)
    bare.url_map.converters.update(CONVERTERS)
    for blueprint in (worker.bp, core.bp, health.bp, openapi.bp):
        bare.register_blueprint(blueprint)
    response = bare.test_client().get("/api/v2/docs")
    assert response.status_code == 200
    assert "/execution/store/ti/{ti_id}/{key}" in response.text and "ui" not in bare.blueprints


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_the_admin_api_checks_keys_like_the_worker_api(client, admin_auth, seeded, stored_rows, method):
    too_long = "k" * 513
    response = client.open(f"{KEYS}/{too_long}", method=method, headers=admin_auth("editor"), json={"value": 1})
    assert response.status_code == 422, response.json
    assert response.json["detail"]["field"] == "key" and "limit is 512" in response.json["detail"]["message"]
    assert stored_rows() == seeded


def rewrite_between_read_and_write(monkeypatch, app, value: str):
    """A worker rewrites the key right after the edit's first read: the race an edit without
    If-Match must survive without recording what did not happen."""
    original = store.edits.current_entry
    calls = []

    def reading_then_rewritten(scope, key, now=None):
        entry = original(scope, key, now)
        if not calls:
            db.session.execute(update(TaskState).where(TaskState.key == key)
                               .values(value=value, version=TaskState.version + 1))
        calls.append(entry)
        return entry

    monkeypatch.setattr(store.edits, "current_entry", reading_then_rewritten)
    return calls


def history(app) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(KeyChange.action, KeyChange.key, KeyChange.old_value).order_by(KeyChange.id))]


def test_a_delete_racing_a_worker_rewrite_deletes_what_is_there_and_records_it(
        app, client, admin_auth, seeded, stored_rows, monkeypatch):
    reads = rewrite_between_read_and_write(monkeypatch, app, '"rewritten by the worker"')
    response = client.delete(f"{KEYS}/seed", headers=admin_auth("editor"))
    assert response.status_code == 204
    assert len(reads) == 2  # read, lost the race, read again
    assert stored_rows() == []
    assert history(app) == [("delete", "seed", '"rewritten by the worker"')]  # what was really deleted


def test_a_conditional_delete_racing_a_worker_rewrite_is_refused_and_records_nothing(
        app, client, admin_auth, seeded, stored_rows, monkeypatch):
    etag = client.get(f"{KEYS}/seed", headers=admin_auth("viewer")).headers["ETag"]
    rewrite_between_read_and_write(monkeypatch, app, '"rewritten by the worker"')
    response = client.delete(f"{KEYS}/seed", headers={**admin_auth("editor"), "If-Match": etag})
    assert response.status_code == 412
    assert response.json["detail"]["current"]["value"] == "rewritten by the worker"
    assert [row.key for row in stored_rows()] == ["seed"]  # nothing deleted (the simulated write rolled back too)
    assert history(app) == []


def test_deleting_an_absent_key_records_nothing(app, client, admin_auth, seeded):
    assert client.delete(f"{KEYS}/never-there", headers=admin_auth("editor")).status_code == 204
    assert history(app) == []


def test_every_answer_that_depends_on_htmx_says_so_in_vary(app, client, seeded):
    from webapp.auth import sessions, users

    with app.app_context():
        token = sessions.start(users.create("vary-editor", "password123", "editor"))
        db.session.commit()
    with client.session_transaction() as session:
        session[sessions.TOKEN_KEY] = token
    page = "/dags/dag/runs/run_1/tasks/task"
    for path in (page, f"{page}/edit?key=seed", f"{page}/delete?key=seed"):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(path, headers=headers)
            assert response.status_code in (200, 286), (path, response.status_code)  # 286: stop polling
            assert "HX-Request" in response.headers.get("Vary", ""), path
