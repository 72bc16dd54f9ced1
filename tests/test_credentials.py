"""Credentials that end: server-side sessions (logout, password, role, disabling, "log out
everywhere", idle and absolute lifetimes), revocable API keys, the credential lifecycle in the
CLI, the admin API and the UI, its audit log, and a login throttle that races cannot pass."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from servers import start_server
from support import PASSWORD, csrf_token, log_in
from webapp.auth import users
from webapp.extensions import db
from webapp.models import AuditEvent, UserSession, utcnow

API = "/api/v2"


def copy_of_cookie(app, client):
    """A second client holding the same session cookie: an attacker's copy."""
    thief = app.test_client()
    cookie = client.get_cookie("session")
    thief.set_cookie(cookie.key, cookie.value)
    return thief


def can_use(client) -> bool:
    """Whether the client's session still reads pages and calls the admin API."""
    return client.get("/").status_code == 200 and client.get(f"{API}/dags").status_code == 200


def audit_actions(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.subject).order_by(AuditEvent.id))]


# --- sessions that end ------------------------------------------------------------------------


def test_a_copied_session_cookie_stops_working_the_moment_its_user_logs_out(app, client, login_as):
    login_as("editor", "eve")
    thief = copy_of_cookie(app, client)
    assert can_use(thief)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").text)})
    assert thief.get("/").status_code == 302  # to the login page
    response = thief.get(f"{API}/dags")
    assert response.status_code == 401 and response.get_json()["detail"]["reason"] == "unauthenticated"
    assert thief.post("/dags/dag/runs/run_1/tasks/task", data={}).status_code in (302, 400)  # no page, no change


@pytest.mark.parametrize("change", ["password", "role", "disable", "logout-everywhere"])
def test_a_credential_change_ends_every_session_of_that_user(app, client, login_as, make_user, change):
    login_as("editor", "eve")
    other_device = app.test_client()
    assert log_in(other_device, "eve").status_code == 302
    bystander = app.test_client()
    assert log_in(bystander, make_user("bob", "editor")).status_code == 302
    runner = app.test_cli_runner()
    command = {"password": ["users", "set-password", "eve", "--password-stdin"],
               "role": ["users", "set-role", "eve", "viewer"], "disable": ["users", "disable", "eve"],
               "logout-everywhere": ["users", "logout-everywhere", "eve"]}[change]
    result = runner.invoke(args=command, input="a new password\n")
    assert result.exit_code == 0, result.output
    assert not can_use(client) and not can_use(other_device)
    assert can_use(bystander)
    assert audit_actions(app)[-1][:2] == ("cli", {"password": "user.set_password", "role": "user.set_role",
                                                  "disable": "user.disable",
                                                  "logout-everywhere": "user.end_sessions"}[change])


def test_a_disabled_user_cannot_log_in_until_enabled(app, client, make_user):
    make_user("eve", "editor")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "disable", "eve"]).exit_code == 0
    assert log_in(client, "eve").status_code == 200  # the form again: invalid username or password
    assert runner.invoke(args=["users", "enable", "eve"]).exit_code == 0
    assert log_in(client, "eve").status_code == 302


def test_log_out_everywhere_from_the_account_page(app, client, login_as):
    login_as("viewer", "vic")
    phone = app.test_client()
    assert log_in(phone, "vic").status_code == 302
    page = client.get("/account")
    assert page.status_code == 200 and "Log out everywhere" in page.text
    assert client.post("/account/logout-everywhere", data={"csrf_token": csrf_token(page.text)}).status_code == 303
    assert not can_use(client) and not can_use(phone)


def test_changing_your_password_needs_the_current_one_and_ends_your_sessions(app, client, login_as):
    login_as("viewer", "vic")
    phone = app.test_client()
    assert log_in(phone, "vic").status_code == 302
    token = csrf_token(client.get("/account").text)
    wrong = client.post("/account", data={"csrf_token": token, "current": "not it", "new": "brand new pw",
                                          "repeat": "brand new pw"})
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    assert can_use(phone)
    done = client.post("/account", data={"csrf_token": token, "current": PASSWORD, "new": "brand new pw",
                                         "repeat": "brand new pw"})
    assert done.status_code == 303 and not can_use(phone)
    assert log_in(client, "vic", "brand new pw").status_code == 302


@pytest.mark.parametrize("lapse, setting", [("last_seen_at", {"session_idle_timeout_minutes": 30}),
                                            ("created_at", {"session_lifetime_hours": 2})])
def test_sessions_lapse_after_the_idle_timeout_and_the_absolute_lifetime(make_app, make_user, lapse, setting):
    app = make_app(**setting)
    client = app.test_client()
    assert log_in(client, make_user("eve")).status_code == 302
    assert can_use(client)
    limit = timedelta(minutes=30) if lapse == "last_seen_at" else timedelta(hours=2)
    with app.app_context():
        db.session.execute(update(UserSession).values({lapse: utcnow() - limit - timedelta(seconds=5)}))
        db.session.commit()
    assert not can_use(client)


def test_the_session_cookie_holds_a_token_not_the_user(app, client, login_as):
    """Nothing in the cookie says who the user is: its token only names a session row."""
    login_as("admin", "root")
    with client.session_transaction() as session:
        assert set(session) >= {"sid"} and "user_id" not in session
        forged = dict(session)
    with app.app_context():
        stored = db.session.execute(select(UserSession.token_hash)).scalars().all()
    assert forged["sid"] not in stored  # only its SHA-256 is kept


# --- API keys ---------------------------------------------------------------------------------


def test_a_revoked_key_answers_401_at_once_on_a_second_server_process(live_server, migrated_database, runner,
                                                                       tmp_path):
    import httpx

    created = runner.invoke(args=["api-keys", "create", "leaked", "--role", "admin"])
    key = created.output.strip().splitlines()[-1]
    second = start_server(migrated_database, tmp_path / "second")
    try:
        for base in (live_server, second.base_url):  # both processes accept it (and may cache nothing)
            assert httpx.get(f"{base}{API}/dags", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert runner.invoke(args=["api-keys", "revoke", "leaked"]).exit_code == 0
        for base in (live_server, second.base_url):
            response = httpx.get(f"{base}{API}/dags", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 401, base
    finally:
        second.stop()


def test_api_keys_list_shows_name_role_created_last_used_and_revoked(client, runner, admin_auth):
    headers = admin_auth("admin")
    assert client.get(f"{API}/dags", headers=headers).status_code == 200
    listed = runner.invoke(args=["api-keys", "list"]).output.splitlines()
    assert listed[0].split("\t") == ["name", "prefix", "role", "dags", "assets", "created", "last used", "revoked"]
    row = listed[1].split("\t")
    assert row[0].startswith("test-admin-") and row[1].startswith("tsk_") and row[2] == "admin"
    assert row[3:5] == ["*", "*"]  # every DAG and asset
    assert row[5].endswith("UTC") and row[6].endswith("UTC") and row[7] == "-"
    api = client.get(f"{API}/apiKeys", headers=headers).get_json()["api_keys"][0]
    assert api["last_used_at"] is not None and api["revoked_at"] is None and "key" not in api


def test_credential_lifecycle_through_the_admin_api_lands_in_the_audit_log(app, client, admin_auth):
    headers = admin_auth("admin")
    created = client.post(f"{API}/users", headers=headers,
                          json={"username": "dana", "password": "password123", "role": "viewer"})
    assert created.status_code == 201 and created.get_json()["role"] == "viewer"
    assert client.patch(f"{API}/users/dana", headers=headers, json={"role": "editor"}).get_json()["role"] == "editor"
    assert client.patch(f"{API}/users/dana", headers=headers, json={"disabled": True}).get_json()["disabled_at"]
    assert client.post(f"{API}/users/dana/logoutEverywhere", headers=headers).get_json() == {"ended": 0}
    key = client.post(f"{API}/apiKeys", headers=headers, json={"name": "ci", "role": "viewer"})
    assert key.status_code == 201 and key.get_json()["key"].startswith("tsk_")
    ci = {"Authorization": f"Bearer {key.get_json()['key']}"}
    assert client.get(f"{API}/dags", headers=ci).status_code == 200
    assert client.post(f"{API}/apiKeys/ci/revoke", headers=headers).get_json()["revoked_at"]
    assert client.get(f"{API}/dags", headers=ci).status_code == 401
    assert client.delete(f"{API}/apiKeys/ci", headers=headers).status_code == 204
    assert client.delete(f"{API}/users/dana", headers=headers).status_code == 204
    log = client.get(f"{API}/auditLog", headers=headers).get_json()
    actions = [(event["action"], event["subject"]) for event in reversed(log["events"])]
    assert actions[-8:] == [("user.create", "dana"), ("user.set_role", "dana"), ("user.disable", "dana"),
                            ("user.end_sessions", "dana"), ("api_key.create", "ci"), ("api_key.revoke", "ci"),
                            ("api_key.delete", "ci"), ("user.delete", "dana")]
    assert {event["actor"] for event in log["events"] if event["subject"] in ("dana", "ci")} == {
        next(iter(event["actor"] for event in log["events"] if event["actor"].startswith("api-key:")))}


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_manage_credentials(client, admin_auth, make_user, role):
    make_user("dana")
    headers = admin_auth(role)
    for method, url, body in (("GET", f"{API}/users", None), ("PATCH", f"{API}/users/dana", {"role": "admin"}),
                              ("POST", f"{API}/apiKeys", {"name": "x"}), ("GET", f"{API}/auditLog", None)):
        assert client.open(url, method=method, headers=headers, json=body).status_code == 403, url


def test_the_access_page_lists_people_keys_and_the_audit_log_for_admins_only(app, client, login_as, admin_auth,
                                                                             make_user):
    admin_auth("editor")
    make_user("dana", "viewer")
    login_as("admin", "root")
    page = client.get("/access")
    assert page.status_code == 200
    for text in ("dana", "root", "test-editor-", "Log out everywhere", "Revoke", "Audit log"):
        assert text in page.text, text
    token = csrf_token(page.text)
    set_role = client.post("/access/users/dana/role", data={"csrf_token": token, "role": "editor"})
    assert set_role.status_code == 303
    with app.app_context():
        assert users.get_by_username("dana").role == "editor"
    assert ("root", "user.set_role", "dana") in audit_actions(app)
    viewer = app.test_client()
    assert log_in(viewer, make_user("vic", "viewer")).status_code == 302
    assert viewer.get("/access").status_code == 403


# --- the login throttle -----------------------------------------------------------------------


def guess_in_parallel(app, attempts: list[tuple[str, str]], headers: dict | None = None) -> list[int]:
    """Post every (username, password) at once from its own client; the statuses."""
    statuses: list[int] = []
    barrier = threading.Barrier(len(attempts))

    def guess(username: str, password: str) -> None:
        client = app.test_client()
        token = csrf_token(client.get("/login").text)
        barrier.wait()
        response = client.post("/login", headers=headers or {},
                               data={"username": username, "password": password, "csrf_token": token})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.fixture
def checked_passwords(monkeypatch):
    """How many passwords were actually checked."""
    checked = []
    original = users.check_password

    def counting(user, password):
        checked.append(user.username)
        return original(user, password)

    monkeypatch.setattr(users, "check_password", counting)
    return checked


def test_parallel_guesses_cannot_pass_the_per_username_limit(app, make_user, checked_passwords):
    make_user("alice")
    statuses = guess_in_parallel(app, [("alice", f"guess {n}") for n in range(30)])
    assert len(checked_passwords) <= 10
    assert statuses.count(429) >= 20


def test_parallel_guesses_across_usernames_cannot_pass_the_per_address_limit(app, make_user, checked_passwords):
    for n in range(40):
        make_user(f"user{n}")
    guess_in_parallel(app, [(f"user{n}", "wrong") for n in range(40)])
    assert len(checked_passwords) <= 20


def test_behind_an_untrusted_proxy_one_person_cannot_lock_everyone_out(app, make_user):
    """Everyone behind the proxy shares its address: the per-address limit is not applied to
    an address that is not the client's own, only the per-username one."""
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    for n in range(25):
        client = app.test_client()
        log_in_through(client, f"attacker{n}", "wrong", forwarded)
    colleague = app.test_client()
    make_user("bob")
    assert log_in_through(colleague, "bob", PASSWORD, {"X-Forwarded-For": "203.0.113.8"}).status_code == 302


def test_behind_a_trusted_proxy_the_per_address_limit_applies_to_the_real_client(make_app, make_user):
    app = make_app(trusted_proxy_hops=1)
    make_user("bob")
    for n in range(21):
        log_in_through(app.test_client(), f"attacker{n}", "wrong", {"X-Forwarded-For": "203.0.113.7"})
    locked = log_in_through(app.test_client(), "bob", PASSWORD, {"X-Forwarded-For": "203.0.113.7"})
    assert locked.status_code == 429
    assert log_in_through(app.test_client(), "bob", PASSWORD, {"X-Forwarded-For": "203.0.113.8"}).status_code == 302


def log_in_through(client, username: str, password: str, headers: dict):
    token = csrf_token(client.get("/login", headers=headers).text)
    return client.post("/login", headers=headers, data={"username": username, "password": password,
                                                        "csrf_token": token})
