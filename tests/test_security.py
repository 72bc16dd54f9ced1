"""Security (issue 4, item 9): the parts not already covered elsewhere.

tests/test_worker_api.py already refuses, on every worker call, alg none, a wrong key, a
tampered payload, an expired token (401), another TI's token (403) and an admin key (401);
tests/test_scheduler_api.py a worker token on a few admin routes. Here every route of the
app is enumerated from ``app.url_map``, so a route added later is covered by itself:

- every credential that is not right for an API (worker tokens, good or forged, on the admin
  API; admin keys of every role on the worker API) is refused with 401 on every route;
- a viewer API key and a viewer's UI session change nothing through any route: every table's
  full contents are compared before and after;
- keys, values and names holding HTML or script are escaped on every UI page;
- a body over the hard limit is a 413 before it is parsed (malformed JSON over the limit is a
  413, not a 422), on every route that takes a body.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import jwt
import pytest
from sqlalchemy import select

from webapp.auth import tokens, users
from webapp.extensions import db

PASSWORD = "correct horse battery"
SKIP_ENDPOINTS = {"static", "ui.login", "ui.logout"}  # log-in and log-out change the session only


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- helpers: routes, snapshots, sessions ---------------------------------------------------


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


def snapshot(app) -> dict:
    """Every row of every table the models know."""
    with app.app_context():
        found = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table)).all()
            found[table.name] = sorted(repr(tuple(row)) for row in rows)
        db.session.remove()
        return found


@pytest.fixture
def world(app, client, make_run, worker_auth):
    """A run with two task instances and a stored key, and the values to fill routes with."""
    ids = make_run(tasks=(("task", None), ("mapped", [0])))
    ti = ids["task"]
    response = client.put(f"/execution/store/ti/{ti}/seed", headers=worker_auth(ti),
                          json={"value": "seed-value", "expires_at": None})
    assert response.status_code == 204
    return {"dag_id": "dag", "run_id": "run_1", "task_id": "task", "ti_id": ti, "key": "seed"}


def make_user(app, username: str, role: str) -> str:
    with app.app_context():
        users.create(username, PASSWORD, role)
        db.session.commit()
    return username


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def log_in(client, username: str) -> str:
    """Log in through the form; returns a CSRF token of the session, for later requests."""
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.text
    return csrf_of(client.get("/").text)


def request(client, endpoint: str, method: str, url: str, headers: dict, csrf: str | None = None):
    query = {"map_index": "-1", "key": "seed"}
    if endpoint.startswith("ui."):
        return client.open(url, method=method, headers=headers, query_string=query, data=form_body(csrf))
    body = JSON_BODIES.get(endpoint)
    return client.open(url, method=method, headers=headers, query_string={"map_index": "-1"},
                       data=None if body is None else json.dumps(body), content_type="application/json")


# --- credentials on the wrong API -------------------------------------------------------------


def _claims(app, ti, **changes):
    now = datetime.now(UTC)
    claims = {"sub": ti, "aud": tokens.AUDIENCE, "scope": tokens.SCOPE, "iat": now, "nbf": now,
              "exp": now + timedelta(minutes=5), **changes}
    return claims


WORKER_TOKENS = {
    "valid worker token": lambda app, ti: tokens.issue(ti)[0],
    "alg none": lambda app, ti: b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(
        {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in _claims(app, ti).items()}).encode()) + ".",
    "wrong key": lambda app, ti: jwt.encode(_claims(app, ti), "another-secret-" + "y" * 40, algorithm="HS256"),
    "expired": lambda app, ti: tokens.issue(ti, now=datetime.now(UTC) - timedelta(days=1))[0],
    "admin scope claim": lambda app, ti: jwt.encode(_claims(app, ti, scope="admin", sub="admin"),
                                                    app.config["SECRET_KEY"], algorithm="HS256"),
}


@pytest.mark.parametrize("kind", list(WORKER_TOKENS))
def test_no_worker_token_is_accepted_on_any_admin_route(app, client, world, kind):
    with app.app_context():
        token = WORKER_TOKENS[kind](app, world["ti_id"])
    before = snapshot(app)
    for endpoint, method, rule in routes(app, prefix="/api/v2"):
        if endpoint.startswith("openapi."):
            continue  # the document is public
        response = request(client, endpoint, method, fill(rule, world), {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (method, rule, response.text)
        assert response.get_json()["detail"]["reason"] == "unauthenticated"
        assert "seed-value" not in response.text
    assert snapshot(app) == before


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_no_admin_key_is_accepted_on_any_worker_route(app, client, world, admin_auth, role):
    headers = admin_auth(role)
    before = snapshot(app)
    for endpoint, method, rule in routes(app, prefix="/execution"):
        response = request(client, endpoint, method, fill(rule, world), headers)
        assert response.status_code == 401, (method, rule, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "seed-value" not in response.text
    assert snapshot(app) == before


# --- a viewer changes nothing -----------------------------------------------------------------


def test_a_viewer_api_key_changes_nothing_through_any_route(app, client, world, admin_auth):
    headers = admin_auth("viewer")
    before = snapshot(app)
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
        assert snapshot(app) == before, (method, rule)
    assert tried >= 15


@pytest.mark.parametrize("with_csrf", [True, False], ids=["with CSRF token", "without CSRF token"])
def test_a_viewer_session_changes_nothing_through_any_route(app, client, world, with_csrf):
    csrf = log_in(client, make_user(app, "vera", "viewer"))
    before = snapshot(app)
    tried = 0
    for endpoint, method, rule in routes(app):
        headers = {"X-CSRFToken": csrf} if with_csrf else {}
        response = request(client, endpoint, method, fill(rule, world), headers, csrf if with_csrf else None)
        assert response.status_code < 500, (method, rule, response.text)
        if method != "GET":
            tried += 1
            assert response.status_code in (400, 401, 403), (method, rule, response.status_code, response.text[:300])
        assert snapshot(app) == before, (method, rule)
    assert tried >= 15
    assert client.get("/").status_code == 200  # still logged in: the refusals were not a log-out


# --- HTML and script are shown escaped ----------------------------------------------------------

XSS_KEY = '<script>alert("xss-key")</script>/"><img src=x onerror=alert(1)>'
XSS_VALUE = {"html": "</pre><script>alert('xss-value')</script>", "attr": "\"' onmouseover=alert(2) x='"}
XSS_STRING_VALUE = "<svg onload=alert('xss-string')>"
XSS_NAME = "<i onclick=alert(3)>x<i>"  # no "/": ids are one path segment
RAW_MARKERS = ["<script>alert(", "<img src=x", "<svg onload", "<i onclick", "onmouseover=alert(2) x='"]


def test_html_and_script_in_keys_values_and_names_are_shown_escaped(app, client, make_run, worker_auth):
    ids = make_run(dag_id=XSS_NAME, run_id=XSS_NAME, tasks=((XSS_NAME, None),))
    ti = ids[XSS_NAME]
    for key, value in ((XSS_KEY, XSS_VALUE), ("plain", XSS_STRING_VALUE), (XSS_STRING_VALUE, 1)):
        response = client.put(f"/execution/store/ti/{ti}/{quote(key, safe='')}", headers=worker_auth(ti),
                              json={"value": value, "expires_at": None})
        assert response.status_code == 204, response.text
    log_in(client, make_user(app, "edith", "editor"))
    q = quote(XSS_NAME, safe="")
    task_page = f"/dags/{q}/runs/{q}/tasks/{q}"
    pages = ["/", f"/dags/{q}", f"/dags/{q}/runs/{q}", task_page, task_page + "?show_expired=1",
             "/search?q=" + quote("<script>"), "/search?q=" + quote("<svg"), "/search?q=" + quote(XSS_NAME)]
    pages += [f"{task_page}/{action}?key={quote(key, safe='')}" for action in ("edit", "delete", "row")
              for key in (XSS_KEY, "plain")]
    seen = ""
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        html = response.text
        for marker in RAW_MARKERS:
            assert marker not in html, (page, marker)
        seen += html
    # the payloads are on the pages, escaped (not dropped)
    assert "&lt;script&gt;alert(" in seen
    assert "&lt;svg onload=alert(" in seen
    assert "&lt;i onclick=alert(3)&gt;" in seen


def test_error_pages_escape_what_the_request_named(app, client):
    log_in(client, make_user(app, "vic", "viewer"))
    q = quote(XSS_NAME, safe="")
    for page in (f"/dags/{q}/runs/{q}", f"/dags/{q}/runs/{q}/tasks/{q}"):
        response = client.get(page)
        assert response.status_code == 404
        for marker in RAW_MARKERS:
            assert marker not in response.text, (page, marker)


def test_api_errors_naming_html_are_json_not_html(client, world, admin_auth):
    response = client.get(f"/api/v2/dags/dag/dagRuns/run_1/taskInstances/task/state-store/{quote(XSS_KEY, safe='')}",
                          headers=admin_auth("viewer"))
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
    response = client.put(f"/execution/store/ti/{world['ti_id']}/k", headers=worker_auth(world["ti_id"]),
                          data=b'{"value": [ {not json')
    assert response.status_code == 422


def test_a_malformed_body_over_the_limit_is_413_on_every_json_route(small, world, admin_auth, worker_auth):
    app, client = small
    admin, worker = admin_auth("admin"), worker_auth(world["ti_id"])
    before = snapshot(app)
    tried = 0
    for endpoint, method, rule in routes(app, methods={"PUT", "PATCH", "POST"}):
        operation = getattr(app.view_functions[endpoint], "openapi", None)
        if operation is None or operation.body is None:
            continue  # the route takes no JSON body (the OpenAPI metadata says which do)
        headers = worker if endpoint.startswith("worker.") else admin
        response = client.open(fill(rule, world), method=method, headers=headers, data=MALFORMED,
                               content_type="application/json")
        tried += 1
        assert response.status_code == 413, (method, rule, response.status_code, response.text[:200])
        assert response.get_json()["detail"]["reason"] == "payload_too_large"
        assert str(LIMIT) in response.get_json()["detail"]["message"]
    assert tried >= 5
    assert snapshot(app) == before


def test_a_form_over_the_limit_is_413_before_the_form_is_read(small, world):
    app, client = small
    csrf = log_in(client, make_user(app, "ed", "editor"))
    before = snapshot(app)
    for endpoint, method, rule in routes(app, methods={"POST"}, prefix="/dags"):
        body = {**form_body(csrf), "value": '"' + "x" * (LIMIT * 2) + '"'}
        response = client.open(fill(rule, world), method=method, data=body, query_string={"key": "seed"},
                               headers={"X-CSRFToken": csrf})
        assert response.status_code == 413, (method, rule, response.status_code)
    assert snapshot(app) == before
