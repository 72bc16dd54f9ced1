"""The admin API also answers a logged-in person (the UI's session cookie). Changes made that
way need the CSRF token, since a browser sends the cookie to any site's request by itself."""

import pytest

from test_ui import csrf_token, log_in, make_user  # noqa: F401  (make_user is a fixture)

KEYS = "/api/v2/dags/dag/dagRuns/run_1/taskInstances/task/state-store"


@pytest.fixture
def editor_session(client, make_user, make_run):  # noqa: F811
    make_run()
    make_user("erin", "editor")
    log_in(client, "erin")
    return client


def test_session_reads_without_an_api_key(editor_session):
    response = editor_session.get("/api/v2/dags")
    assert response.status_code == 200 and response.json["total_entries"] == 1


def test_session_change_without_csrf_token_is_refused(editor_session, stored_rows):
    response = editor_session.put(KEYS + "/k", json={"value": 1, "expires_at": None})
    assert response.status_code == 400 and "CSRF" in response.json["detail"]["message"]
    assert stored_rows() == []


def test_session_change_with_csrf_token_is_recorded_under_the_username(app, editor_session, stored_rows):
    token = csrf_token(editor_session.get("/").text)
    response = editor_session.put(KEYS + "/k", json={"value": 1, "expires_at": None}, headers={"X-CSRFToken": token})
    assert response.status_code == 201
    assert [row.key for row in stored_rows()] == ["k"]
    from webapp import runs, store

    with app.app_context():
        changes = store.changes_for(store.scope_of(runs.get_task_instance("dag", "run_1", "task")))
    assert [change.actor for change in changes] == ["erin"]


def test_viewer_session_cannot_change_keys(client, make_user, make_run, stored_rows):  # noqa: F811
    make_run()
    make_user("vic", "viewer")
    log_in(client, "vic")
    token = csrf_token(client.get("/").text)
    response = client.put(KEYS + "/k", json={"value": 1, "expires_at": None}, headers={"X-CSRFToken": token})
    assert response.status_code == 403 and stored_rows() == []


def test_no_session_and_no_key_is_401(client):
    response = client.get("/api/v2/dags")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
