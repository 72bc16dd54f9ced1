"""The admin API also answers a logged-in person (the UI's session cookie). Changes made that
way need the CSRF token, since a browser sends the cookie to any site's request by itself."""

import pytest

from support import csrf_token, store_url


@pytest.fixture
def editor_session(login_as, make_run):
    make_run()
    return login_as("editor", "erin")


def test_session_reads_without_an_api_key(editor_session):
    response = editor_session.get("/api/v2/dags")
    assert response.status_code == 200 and response.json["total_entries"] == 1


def test_session_change_without_csrf_token_is_refused(editor_session, stored_rows):
    response = editor_session.put(store_url("k"), json={"value": 1, "expires_at": None})
    assert response.status_code == 400 and "CSRF" in response.json["detail"]["message"]
    assert stored_rows() == []


def test_session_change_with_csrf_token_is_recorded_under_the_username(app, editor_session, stored_rows):
    token = csrf_token(editor_session.get("/").text)
    response = editor_session.put(store_url("k"), json={"value": 1, "expires_at": None}, headers={"X-CSRFToken": token})
    assert response.status_code == 201
    assert [row.key for row in stored_rows()] == ["k"]
    from webapp import runs, store

    with app.app_context():
        changes, _more = store.changes_for(store.scope_of(runs.get_task_instance("dag", "run_1", "task")))
    assert [change.actor for change in changes] == ["erin"]


def test_viewer_session_cannot_change_keys(login_as, make_run, stored_rows):
    make_run()
    client = login_as("viewer", "vic")
    token = csrf_token(client.get("/").text)
    response = client.put(store_url("k"), json={"value": 1, "expires_at": None}, headers={"X-CSRFToken": token})
    assert response.status_code == 403 and stored_rows() == []


def test_no_session_and_no_key_is_401(client):
    response = client.get("/api/v2/dags")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
