"""Security: the parts not already covered elsewhere.

tests/test_worker_api.py already refuses, on every worker call, alg none, a wrong key, a
tampered payload, an expired token (401) and another TI's token (403). Here every route of
the app is enumerated from ``app.url_map``, so a route added later is covered by itself:

- every credential that is not right for an API (worker tokens, good or forged, on the admin
  API; admin keys of every role on the worker API) is refused with 401 on every route;
- a viewer API key and a viewer's UI session change nothing through any route: every table's
  full contents are compared before and after;
- keys, values and names holding HTML or script are escaped on every UI page (the one test
  of it: the key table, the edit, delete and row fragments, the history, search, breadcrumbs);
- a body over the hard limit is a 413 before it is parsed (malformed JSON over the limit is a
  413, not a 422), on every route that takes a body.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import quote

import jwt
import pytest

from support import b64url, csrf_token, key_url, log_in, store_url, ti_page_url, token_claims
from webapp.auth import tokens

# Log-in, log-out and a person's own account change their own session or password only.
SKIP_ENDPOINTS = {"static", "ui.login", "ui.logout", "ui.account", "ui.logout_everywhere"}


# --- helpers: routes and requests -----------------------------------------------------------


def routes(app, methods=None, prefix: str = ""):
    """(endpoint, method, rule) for every route of the app, HEAD and OPTIONS aside."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS or not rule.rule.startswith(prefix):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if methods is None or method in methods:
                found.append((rule.endpoint, method, rule.rule))
    return found


def fill(rule: str, values: dict) -> str:
    def replace(match):
        return quote(str(values[match.group(1)]), safe="")
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", replace, rule)


JSON_BODIES = {
    "admin.create_dag_run": {"dag_run_id": "run_new", "tasks": [{"task_id": "t"}]},
    "admin.set_task_instance_state": {"state": "running"},
    "admin.put_key": {"value": "changed", "expires_at": None},
    "admin.patch_key": {"value": "changed"},
    "admin.create_user": {"username": "mallory", "password": "password123", "role": "admin"},
    "admin.change_user": {"role": "admin"},
    "admin.create_api_key": {"name": "mallory", "role": "admin"},
    "admin.create_asset": {"name": "mallory", "uri": "mallory"},
    "admin.issue_watcher_token": {"watcher": "mallory"},
    "admin.put_asset_key": {"value": "changed"},
    "admin.patch_asset_key": {"value": "changed"},
    "worker.put_key": {"value": "changed", "expires_at": None},
    "worker.empty_key": {"value": "changed"},
}


def form_body(csrf: str | None) -> dict:
    """Fields every UI form might read, filled in so only the role check can stop the change."""
    body = {"key": "seed", "value": '"changed"', "expiration": "never", "expires_at": "", "version": "1",
            "extend_by": "1d", "confirm": "y", "all_map_indices": "1", "map_index": "-1"}
    if csrf is not None:
        body["csrf_token"] = csrf
    return body


@pytest.fixture
def world(app, make_run, worker_put):
    """A run with two task instances, an asset, a stored key of each, and the values to fill
    routes with."""
    from webapp import assets
    from webapp.extensions import db

    ids = make_run(tasks=(("task", None), ("mapped", [0])))
    ti = ids["task"]
    worker_put(ti, "seed", "seed-value")
    with app.app_context():
        asset_id = assets.create("seed-asset", "s3://seed").id
        db.session.commit()
    return {"dag_id": "dag", "run_id": "run_1", "task_id": "task", "ti_id": ti, "key": "seed",
            "username": "vera", "name_or_prefix": "nobody", "key_id": 1, "action": "disable", "asset_id": asset_id}


def session_csrf(client) -> str:
    """The CSRF token of a logged-in session, for its later requests."""
    return csrf_token(client.get("/").text)


def request(client, endpoint: str, method: str, url: str, headers: dict, csrf: str | None = None):
    query = {"map_index": "-1", "key": "seed"}
    if endpoint.startswith("ui."):
        return client.open(url, method=method, headers=headers, query_string=query, data=form_body(csrf))
    body = JSON_BODIES.get(endpoint)
    return client.open(url, method=method, headers=headers, query_string={"map_index": "-1"},
                       data=None if body is None else json.dumps(body), content_type="application/json")


# --- credentials on the wrong API -------------------------------------------------------------


WORKER_TOKENS = {
    "valid worker token": lambda app, ti: tokens.issue(ti)[0],
    "alg none": lambda app, ti: b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(
        {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in token_claims(app, ti).items()}
    ).encode()) + ".",
    "wrong key": lambda app, ti: jwt.encode(token_claims(app, ti), "another-secret-" + "y" * 40, algorithm="HS256"),
    "expired": lambda app, ti: tokens.issue(ti, now=datetime.now(UTC) - timedelta(days=1))[0],
    "admin scope claim": lambda app, ti: jwt.encode(token_claims(app, ti, scope="admin", sub="admin"),
                                                    app.config["SECRET_KEY"], algorithm="HS256"),
}


@pytest.mark.parametrize("kind", list(WORKER_TOKENS))
def test_no_worker_token_is_accepted_on_any_admin_route(app, client, world, table_contents, kind):
    with app.app_context():
        token = WORKER_TOKENS[kind](app, world["ti_id"])
    before = table_contents()
    for endpoint, method, rule in routes(app, prefix="/api/v2"):
        if endpoint.startswith("openapi."):
            continue  # the document is public
        response = request(client, endpoint, method, fill(rule, world), {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (method, rule, response.text)
        assert response.get_json()["detail"]["reason"] == "unauthenticated"
        assert "seed-value" not in response.text
    assert table_contents() == before


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_no_admin_key_is_accepted_on_any_worker_route(app, client, world, admin_auth, table_contents, role):
    headers = admin_auth(role)
    before = table_contents()
    for endpoint, method, rule in routes(app, prefix="/execution"):
        response = request(client, endpoint, method, fill(rule, world), headers)
        assert response.status_code == 401, (method, rule, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.get_json()["detail"]["reason"] == "unauthenticated"
        assert "seed-value" not in response.text
    assert table_contents() == before


# --- a viewer changes nothing -----------------------------------------------------------------


def test_a_viewer_api_key_changes_nothing_through_any_route(app, client, world, admin_auth, table_contents):
    headers = admin_auth("viewer")
    before = table_contents()
    tried = 0
    for endpoint, method, rule in routes(app):
        response = request(client, endpoint, method, fill(rule, world), headers)
        assert response.status_code < 500, (method, rule, response.text)
        if method != "GET":
            tried += 1
            # 403 on the admin API; the key is no login for the UI (401 would be an API's
            # answer, the UI sends it to the login page) and no worker token (401)
            assert response.status_code in (401, 403, 400) or (
                endpoint.startswith("ui.") and response.status_code == 302), (method, rule, response.status_code)
        assert table_contents() == before, (method, rule)
    assert tried >= 15


@pytest.mark.parametrize("with_csrf", [True, False], ids=["with CSRF token", "without CSRF token"])
def test_a_viewer_session_changes_nothing_through_any_route(app, client, world, login_as, table_contents, with_csrf):
    csrf = session_csrf(login_as("viewer", "vera"))
    before = table_contents()
    tried = 0
    for endpoint, method, rule in routes(app):
        headers = {"X-CSRFToken": csrf} if with_csrf else {}
        response = request(client, endpoint, method, fill(rule, world), headers, csrf if with_csrf else None)
        assert response.status_code < 500, (method, rule, response.text)
        if method != "GET":
            tried += 1
            assert response.status_code in (400, 401, 403), (method, rule, response.status_code, response.text[:300])
        assert table_contents() == before, (method, rule)
    assert tried >= 15
    assert client.get("/").status_code == 200  # still logged in: the refusals were not a log-out


# --- HTML and script are shown escaped ----------------------------------------------------------

XSS_KEY = '<script>alert("xss-key")</script>/"><img src=x onerror=alert(1)>'
XSS_VALUE = {"html": "</pre><script>alert('xss-value')</script>", "attr": "\"' onmouseover=alert(2) x='"}
XSS_VALUE_SHOWN = "</pre><script>alert('xss-value')</script>"  # part of XSS_VALUE as the value's text
XSS_STRING_VALUE = "<svg onload=alert('xss-string')>"
XSS_NAME = "<i onclick=alert(3)>x<i>"  # no "/": ids are one path segment
XSS_UI_KEY = "<b onmouseover=alert(4)>added in the UI</b>"  # changes through the UI and the API: history rows
XSS_UI_VALUE = "<a href=javascript:alert(5)>first</a>"
XSS_API_VALUE = "<iframe src=javascript:alert(6)>"
RAW_MARKERS = ["<script>alert(", "<img src=x", "<svg onload", "<i onclick", "onmouseover=alert(2) x='",
               "<b onmouseover", "<a href=javascript", "<iframe src"]
HTMX = {"HX-Request": "true"}


def test_html_and_script_in_keys_values_and_names_are_shown_escaped(client, make_run, worker_put, login_as,
                                                                     admin_auth):
    ti = make_run(dag_id=XSS_NAME, run_id=XSS_NAME, tasks=((XSS_NAME, None),))[XSS_NAME]
    for key, value in ((XSS_KEY, XSS_VALUE), ("plain", XSS_STRING_VALUE), (XSS_STRING_VALUE, 1)):
        worker_put(ti, key, value)
    login_as("editor", "edith")
    task_page = ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME)
    added = client.post(task_page, data={"csrf_token": session_csrf(client), "key": XSS_UI_KEY,
                                         "value": json.dumps(XSS_UI_VALUE), "expiration": "never"})
    assert added.status_code == 303, added.text
    edited = client.put(store_url(XSS_UI_KEY, dag=XSS_NAME, run=XSS_NAME, task=XSS_NAME), headers=admin_auth("editor"),
                        json={"value": XSS_API_VALUE, "expires_at": None})
    assert edited.status_code == 200, edited.text

    q = quote(XSS_NAME, safe="")
    everything_of_the_task = [XSS_NAME, XSS_KEY, XSS_VALUE_SHOWN, XSS_STRING_VALUE,  # names, the key table
                              XSS_UI_KEY, XSS_UI_VALUE, XSS_API_VALUE]  # ... and the history (old → new)
    pages = [  # (page, htmx?, what it must show: the payloads, escaped but not dropped)
        ("/", False, [XSS_NAME]),
        (f"/dags/{q}", False, [XSS_NAME]),
        (f"/dags/{q}/runs/{q}", False, [XSS_NAME]),
        (task_page, False, everything_of_the_task),
        (task_page + "?show_expired=1", False, everything_of_the_task),
        (task_page, True, [XSS_KEY, XSS_VALUE_SHOWN, XSS_STRING_VALUE]),  # the rows a poll fetches
        ("/search?q=" + quote("<script>"), False, [XSS_KEY, XSS_NAME]),
        ("/search?q=" + quote("<svg"), False, [XSS_STRING_VALUE]),
        ("/search?q=" + quote(XSS_NAME), False, [XSS_NAME]),  # no key has it: "No live key contains …"
    ]
    for htmx in (False, True):  # each as its own page and as the fragment htmx swaps into the row
        pages += [
            (ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME, "edit", key=XSS_KEY), htmx, [XSS_KEY, XSS_VALUE_SHOWN]),
            (ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME, "edit", key="plain"), htmx, [XSS_STRING_VALUE]),
            (ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME, "delete", key=XSS_KEY), htmx, [XSS_KEY]),
            (ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME, "row", key=XSS_KEY), htmx, [XSS_KEY, XSS_VALUE_SHOWN]),
            (ti_page_url(XSS_NAME, XSS_NAME, XSS_NAME, "row", key="plain"), htmx, [XSS_STRING_VALUE]),
        ]
    for page, htmx, shown in pages:
        response = client.get(page, headers=HTMX if htmx else {})
        assert response.status_code in (200, 286), (page, htmx, response.status_code)
        html = response.text
        assert [marker for marker in RAW_MARKERS if marker in html] == [], (page, htmx)
        assert [payload for payload in shown if payload not in unescape(html)] == [], (page, htmx)


def test_error_pages_escape_what_the_request_named(login_as):
    client = login_as("viewer", "vic")
    q = quote(XSS_NAME, safe="")
    for page in (f"/dags/{q}/runs/{q}", f"/dags/{q}/runs/{q}/tasks/{q}"):
        response = client.get(page)
        assert response.status_code == 404
        for marker in RAW_MARKERS:
            assert marker not in response.text, (page, marker)


def test_api_errors_naming_html_are_json_not_html(client, world, admin_auth):
    response = client.get(store_url(XSS_KEY), headers=admin_auth("viewer"))
    assert response.status_code == 404
    assert response.mimetype == "application/json"  # a browser never renders it as a page


# --- bodies over the hard limit: 413 before parsing -----------------------------------------------

LIMIT = 4096
MALFORMED = b'{"value": [' + b'"' + b"x" * (LIMIT * 2) + b'", {not json'  # over the limit and not JSON


@pytest.fixture
def small(make_app):
    app = make_app(max_request_bytes=LIMIT)
    return app, app.test_client()


def test_the_malformed_body_is_a_422_when_small(small, world, worker_auth):
    app, client = small
    response = client.put(key_url(world["ti_id"], "k"), headers=worker_auth(world["ti_id"]),
                          data=b'{"value": [ {not json')
    assert response.status_code == 422


def test_a_malformed_body_over_the_limit_is_413_on_every_json_route(small, world, admin_auth, worker_auth,
                                                                    table_contents):
    app, client = small
    admin, worker = admin_auth("admin"), worker_auth(world["ti_id"])
    before = table_contents()
    tried = 0
    for endpoint, method, rule in routes(app, methods={"PUT", "PATCH", "POST"}):
        operation = getattr(app.view_functions[endpoint], "openapi", None)
        if operation is None or operation.body is None:
            continue  # the route takes no JSON body (the OpenAPI metadata says which do)
        headers = worker if endpoint.startswith("worker.") else admin
        query = {"name": "seed-asset", "key": "k"} if "by-name" in rule or "/service/assets" in rule else \
            {"uri": "s3://seed", "key": "k"} if "by-uri" in rule else {}
        response = client.open(fill(rule, world), method=method, headers=headers, data=MALFORMED,
                               content_type="application/json", query_string=query)
        tried += 1
        assert response.status_code == 413, (method, rule, response.status_code, response.text[:200])
        assert response.get_json()["detail"]["reason"] == "payload_too_large"
        assert str(LIMIT) in response.get_json()["detail"]["message"]
    assert tried >= 5
    assert table_contents() == before


def test_a_form_over_the_limit_is_413_before_the_form_is_read(small, world, make_user, table_contents):
    app, client = small
    assert log_in(client, make_user("ed", "editor")).status_code == 302
    csrf = session_csrf(client)
    before = table_contents()
    for _endpoint, method, rule in routes(app, methods={"POST"}, prefix="/dags"):
        body = {**form_body(csrf), "value": '"' + "x" * (LIMIT * 2) + '"'}
        response = client.open(fill(rule, world), method=method, data=body, query_string={"key": "seed"},
                               headers={"X-CSRFToken": csrf})
        assert response.status_code == 413, (method, rule, response.status_code)
    assert table_contents() == before
