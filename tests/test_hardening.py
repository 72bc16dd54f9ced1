"""Inputs that once gave a 500 or got through, each reproduced and refused, on every database
the suite runs on: deep values, NUL bytes and invalid UTF-8 anywhere in a request, CR/LF in
``next``, Extend past the year 9999, integers no column holds, security headers and cookies,
redirects that named a host, refreshed tokens on refused calls, blank keys, ids holding "/"
and the files a new deployment creates."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime

import pytest

from support import PASSWORD, csrf_token, key_url, log_in, store_url, ti_page_url
from webapp.store.rules import MAX_VALUE_DEPTH

API = "/api/v2"


def nested(depth: int):
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


# --- deep values --------------------------------------------------------------------------------


def test_a_value_nested_past_the_limit_is_refused_at_every_write(client, ti_id, auth, admin_auth, stored_rows, seeded):
    too_deep = nested(MAX_VALUE_DEPTH + 1)
    worker = client.put(key_url(ti_id, "deep"), headers=auth, data=json.dumps({"value": too_deep}))
    assert worker.status_code == 422 and f"the limit is {MAX_VALUE_DEPTH}" in worker.get_json()["detail"]["message"]
    admin = client.put(store_url("deep"), headers=admin_auth("editor"), data=json.dumps({"value": too_deep}),
                       content_type="application/json")
    assert admin.status_code == 422 and admin.get_json()["detail"]["field"] == "value"
    assert stored_rows() == seeded


def test_a_value_at_the_limit_shows_on_every_page_and_listing(client, ti_id, auth, admin_auth, login_as):
    deepest = nested(MAX_VALUE_DEPTH)
    assert client.put(key_url(ti_id, "deep"), headers=auth, data=json.dumps({"value": deepest})).status_code == 204
    assert client.get(key_url(ti_id, "deep"), headers=auth).get_json()["value"] == deepest
    listing = client.get(store_url(), headers=admin_auth("viewer"))
    assert listing.status_code == 200 and listing.get_json()["task_state_store"][0]["value"] == deepest
    login_as("editor")
    for url in (ti_page_url(), ti_page_url(action="edit", key="deep"), "/search?q=deep"):
        assert client.get(url).status_code == 200, url


# --- NUL bytes, invalid UTF-8, and everything else no database can store ------------------------

NUL_PATHS = [
    f"{API}/dags/a%00b/dagRuns", f"{API}/dags/dag/dagRuns/r%00n", f"{API}/dags/dag/dagRuns/run_1/taskInstances",
    f"{API}/dags/dag/dagRuns/run_1/taskInstances/t%00sk",
    f"{API}/dags/dag/dagRuns/run_1/taskInstances/task/state-store/k%00ey",
    "/dags/a%00b", "/dags/dag/runs/r%00n", "/dags/dag/runs/run_1/tasks/t%00sk", "/search?q=%00",
    "/search?q=x&dag_id=%00",
    "/dags/dag/runs/run_1/tasks/task/edit?key=k%00", "/dags/dag?state=%00",
]


@pytest.mark.parametrize("url", NUL_PATHS)
def test_nul_anywhere_in_a_path_or_query_is_422_naming_it_before_any_sql(client, ti_id, admin_auth, login_as, url,
                                                                        sql_statements):
    login_as("editor")
    headers = admin_auth("editor") if url.startswith(API) else {}
    for method in ("GET", "PATCH", "DELETE") if "state-store" in url else ("GET",):
        with sql_statements() as statements:
            response = client.open(url, method=method, headers=headers, json={"value": 1})
        if "%00" not in url:
            assert response.status_code == 200
            continue
        assert response.status_code == 422, (url, method, response.status_code)
        assert not [s for s in statements if "task_state" in s or "dag_run" in s or "task_instance" in s], url


def test_nul_in_the_login_username_is_an_invalid_login_not_an_error(client):
    token = csrf_token(client.get("/login").text)
    response = client.post("/login", data={"username": "ad\x00min", "password": "x", "csrf_token": token})
    assert response.status_code == 200 and "Invalid username or password." in response.text


@pytest.mark.parametrize("raw_path, field", [
    (f"{API}/dags/caf\xe9/dagRuns", "dag_id"),
    (f"{API}/dags/dag/dagRuns/\xff", "run_id"),
    ("/dags/\xc3\x28", "dag_id"),
])
def test_invalid_utf8_in_an_id_is_422_naming_it(client, admin_auth, login_as, raw_path, field):
    """As a server hands it over: the path's bytes, percent-decoded, one character per byte."""
    login_as("viewer")
    response = client.get("/", environ_overrides={"PATH_INFO": raw_path},
                          headers=admin_auth("viewer") if raw_path.startswith(API) else {})
    assert response.status_code == 422
    if raw_path.startswith(API):
        assert response.get_json()["detail"]["field"] == field
        assert "not valid UTF-8" in response.get_json()["detail"]["message"]


def test_a_search_for_nul_on_sqlite_is_not_a_retryable_503(client, login_as):
    login_as("viewer")
    response = client.get("/search?q=%00")
    assert response.status_code == 422 and "Retry-After" not in response.headers


# --- other 500s ---------------------------------------------------------------------------------


def test_cr_lf_in_next_is_ignored(client, make_user):
    make_user("eve")
    response = log_in(client, "eve", PASSWORD, next_url="/dags/x\r\nSet-Cookie: evil=1")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "evil" not in response.headers.get("Set-Cookie", "")


def test_extend_past_the_year_9999_is_refused_not_an_error(client, ti_id, auth, login_as, stored_rows):
    client.put(key_url(ti_id, "k"), headers=auth,
               data=json.dumps({"value": 1, "expires_at": "9999-12-30T00:00:00+00:00"}))
    login_as("editor")
    page = client.get(ti_page_url()).text
    version = page.split('name="version" value="')[1].split('"')[0]
    response = client.post(ti_page_url(action="extend", key="k"),
                           data={"csrf_token": csrf_token(page), "version": version, "by": "7d"})
    assert response.status_code == 303
    assert "year 9999" in client.get(ti_page_url()).text
    assert stored_rows()[0].expires_at == datetime(9999, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize("index", [2**31, 2**63, -(2**31) - 1])
def test_map_indexes_no_column_holds_are_422(client, admin_auth, index):
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin_auth(),
                           json={"dag_run_id": "r", "tasks": [{"task_id": "t", "map_indexes": [0, index]}]})
    assert response.status_code == 422 and response.get_json()["detail"]["field"] == "tasks[0].map_indexes[1]"


# --- headers, cookies, redirects ----------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client, login_as, admin_auth, ti_id, auth):
    login_as("viewer")
    for url, headers in (("/", {}), ("/login", {}), (f"{API}/dags", admin_auth("viewer")),
                         (key_url(ti_id, "missing"), auth), ("/health", {})):
        response = client.get(url, headers=headers)
        policy = response.headers["Content-Security-Policy"]
        script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, url
        assert "frame-ancestors 'none'" in policy and response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store", url
    assert "no-store" not in client.get("/static/app.css").headers.get("Cache-Control", "")


def test_pages_load_no_inline_script(client, login_as):
    login_as("editor")
    page = client.get(ti_page_url()).text
    assert "<script>" not in page and " hx-on" not in page and "onclick" not in page
    assert '"allowEval": false' in page


@pytest.mark.parametrize("setting, forwarded, secure", [
    ("auto", {}, False), ("auto", {"X-Forwarded-Proto": "https"}, True), ("always", {}, True),
    ("never", {"X-Forwarded-Proto": "https"}, False),
])
def test_the_session_cookie_is_secure_as_configured(make_app, make_user, setting, forwarded, secure):
    app = make_app(cookie_secure=setting, trusted_proxy_hops=1)
    client = app.test_client()
    make_user("eve")
    token = csrf_token(client.get("/login", headers=forwarded).text)
    # Over HTTPS, Flask-WTF also checks that the form came from this site.
    response = client.post("/login", headers={**forwarded, "Referer": "https://localhost/login"},
                           data={"username": "eve", "password": PASSWORD, "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert ("Secure" in cookie) is secure and "HttpOnly" in cookie


def test_redirects_name_a_path_never_the_requests_host(client, admin_auth):
    response = client.get(f"{API}//dags", headers={**admin_auth(), "Host": "evil.example"})
    assert response.status_code == 308 and response.headers["Location"] == f"{API}/dags"
    login = client.get("/dags/x", headers={"Host": "evil.example"})
    assert login.status_code == 302 and login.headers["Location"].startswith("/login")


# --- tokens, keys, ids --------------------------------------------------------------------------


def test_a_fresh_token_comes_only_with_answers_that_worked_for_its_own_task_instance(client, make_run,
                                                                                     issue_token):
    from datetime import timedelta

    ids = make_run(tasks=(("a", None), ("b", None)))
    old = issue_token(ids["a"], now=datetime.now(UTC) - timedelta(seconds=590))  # nearly expired
    headers = {"Authorization": f"Bearer {old}"}
    assert "Refreshed-API-Token" in client.put(key_url(ids["a"], "k"), headers=headers,
                                               data=json.dumps({"value": 1})).headers
    assert "Refreshed-API-Token" in client.get(key_url(ids["a"], "not-yet"), headers=headers).headers
    for refused in (client.get(key_url(ids["b"], "k"), headers=headers),  # another task instance: 403
                    client.put(key_url(ids["a"], "k"), headers=headers, data=b"{"),  # 422
                    client.get(key_url(ids["a"], "k" * 600), headers=headers)):
        assert refused.status_code >= 400 and "Refreshed-API-Token" not in refused.headers


@pytest.mark.parametrize("key", [" ", "   ", "\u3000"])
def test_a_key_of_only_spaces_is_refused(client, ti_id, auth, key, stored_rows, seeded):
    response = client.put(key_url(ti_id, key), headers=auth, data=json.dumps({"value": 1}))
    assert response.status_code == 422 and "other than spaces" in response.get_json()["detail"]["message"]
    assert stored_rows() == seeded


@pytest.mark.parametrize("field, body", [
    ("dag_run_id", {"dag_run_id": "a/b"}),
    ("task_id", {"dag_run_id": "r", "tasks": [{"task_id": "x/y"}]}),
])
def test_ids_holding_a_slash_are_refused_at_creation(client, admin_auth, field, body):
    response = client.post(f"{API}/dags/dag/dagRuns", headers=admin_auth(), json=body)
    assert response.status_code == 422 and response.get_json()["detail"]["field"] == field
    assert "'/'" in response.get_json()["detail"]["message"]


# --- files --------------------------------------------------------------------------------------


def test_a_new_deployment_creates_its_folder_and_database_for_its_owner_only(tmp_path):
    from webapp import create_app
    from webapp.extensions import db

    instance = tmp_path / "instance"
    app = create_app({"secret_key": "files-Vq3x8ZKpL2mN7rT4wY9bC6dF1gH5jS0a"}, instance_path=str(instance))
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE(os.stat(instance).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(instance / "taskstore.db").st_mode) == 0o600


@pytest.mark.parametrize("row_id", ["0", "2147483648", "99999999999999999999999"])
def test_row_ids_no_column_holds_are_404_not_an_error(client, admin_auth, login_as, row_id):
    for path in (f"/api/v2/assets/{row_id}", f"/api/v2/assets/{row_id}/state-store"):
        assert client.get(path, headers=admin_auth()).status_code == 404, path
    assert client.delete(f"/api/v2/assets/{row_id}", headers=admin_auth("admin")).status_code in (404, 405)
    admin = login_as("admin")
    assert admin.get(f"/assets/{row_id}").status_code == 404
    page = admin.get("/access").text
    assert admin.post(f"/access/api-keys/{row_id}/revoke", data={"csrf_token": csrf_token(page)}).status_code == 404
