"""The admin UI through Flask's test client, with CSRF protection on as in production."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from webapp import cli, runs
from webapp.auth import users
from webapp.extensions import db
from webapp.models import utcnow
from webapp.ui import views

PASSWORD = "correct horse battery"


class _Table(HTMLParser):
    """The text of every table row, cell by cell (th and td)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = _Table()
    parser.feed(html)
    return parser.rows


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


@pytest.fixture
def make_user(app):
    def _make(username="alice", role="viewer", password=PASSWORD):
        with app.app_context():
            users.create(username, password, role)
            db.session.commit()
        return username

    return _make


def log_in(client, username: str, password: str = PASSWORD, next_url: str | None = None):
    login_url = "/login" + (f"?next={quote(next_url)}" if next_url else "")
    token = csrf_token(client.get(login_url).text)
    return client.post(login_url, data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def viewer(client, make_user):
    """A test client logged in as a viewer."""
    assert log_in(client, make_user()).status_code == 302
    return client


def put_key(client, worker_auth, ti: str, key: str, value, expires_at=None):
    response = client.put(
        f"/execution/store/ti/{ti}/{quote(key, safe='')}",
        json={"value": value, "expires_at": expires_at and expires_at.isoformat()},
        headers=worker_auth(ti),
    )
    assert response.status_code == 204, response.text


def set_states(app, dag_id: str, run_id: str, *steps: tuple[str, str | None]) -> None:
    with app.app_context():
        for task_id, state in steps:
            runs.set_state(runs.get_task_instance(dag_id, run_id, task_id), state, clear_on_success=False)
        db.session.commit()


def key_page(dag_id="dag", run_id="run_1", task_id="task", **args) -> str:
    query = "&".join(f"{name}={value}" for name, value in args.items())
    return f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}" + (f"?{query}" if query else "")


# --- logging in and out -----------------------------------------------------------------


def test_csrf_protection_is_on_in_the_test_app(app):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True


@pytest.mark.parametrize("path", ["/", "/dags/dag", "/dags/dag/runs/run_1", "/dags/dag/runs/run_1/tasks/task?map_index=2"])
def test_every_page_redirects_to_login_with_next(client, path):
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == [path]


def test_login_returns_to_the_page_asked_for(client, make_user, make_run):
    make_run()
    response = log_in(client, make_user(), next_url="/dags/dag?state=queued")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dags/dag?state=queued"
    assert client.get("/dags/dag?state=queued").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client, make_user, target):
    response = log_in(client, make_user(), next_url=target)
    assert response.headers["Location"] == "/"


def test_login_page_has_the_accessible_names(client):
    html = client.get("/login").text
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<button type="submit">Log in</button>' in html


@pytest.mark.parametrize("username, password", [("alice", "wrong password"), ("nobody", PASSWORD)])
def test_bad_credentials_are_refused(client, make_user, username, password):
    make_user("alice")
    response = log_in(client, username, password)
    assert response.status_code == 200
    assert "Invalid username or password." in response.text
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_rejected(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.text
    assert client.get("/").status_code == 302


def test_logout_needs_a_post_with_csrf_token(viewer):
    page = viewer.get("/").text
    assert viewer.get("/logout").status_code == 405
    assert viewer.post("/logout").status_code == 400  # no token: still logged in
    assert viewer.get("/").status_code == 200
    response = viewer.post("/logout", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert viewer.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    response = log_in(client, make_user())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_deleted_user_is_logged_out(app, viewer):
    with app.app_context():
        db.session.delete(users.get_by_username("alice"))
        db.session.commit()
    assert viewer.get("/").status_code == 302


def test_worker_api_needs_no_csrf_token(client, ti_id, worker_auth):
    put_key(client, worker_auth, ti_id, "k", 1)  # a bearer token, not a cookie: exempt


# --- pages --------------------------------------------------------------------------------


def test_dags_page_counts_runs_task_instances_with_keys_and_live_keys(app, viewer, make_run, worker_auth):
    etl = make_run("etl", "run_1", tasks=(("a", None), ("b", None), ("c", [0, 1])))
    make_run("etl", "run_2")
    other = make_run("other", "run_1")
    put_key(viewer, worker_auth, etl["a"], "one", 1)
    put_key(viewer, worker_auth, etl["a"], "two", 2)
    put_key(viewer, worker_auth, etl[("c", 1)], "three", 3)
    put_key(viewer, worker_auth, etl["b"], "gone", 4, utcnow() - timedelta(minutes=1))  # expired: not counted
    put_key(viewer, worker_auth, other["task"], "x", "y")

    response = viewer.get("/")
    assert response.status_code == 200
    rows = table_rows(response.text)
    assert rows[0] == ["DAG", "Runs", "Task instances with keys", "Keys"]
    assert rows[1:] == [["etl", "2", "2", "3"], ["other", "1", "1", "1"]]
    assert '<a href="/dags/etl">etl</a>' in response.text


def test_dags_page_when_empty(viewer):
    assert "No DAG runs yet" in viewer.get("/").text


def test_runs_page_lists_runs_with_counts_and_filters_by_state(app, viewer, make_run, worker_auth):
    first = make_run("etl", "run_1", tasks=(("a", None), ("b", [0, 1, 2])))
    make_run("etl", "run_2")
    set_states(app, "etl", "run_2", ("task", "running"))
    put_key(viewer, worker_auth, first["a"], "k", 1)

    rows = table_rows(viewer.get("/dags/etl").text)
    assert rows[0] == ["Run", "State", "Logical date", "Task instances", "Keys"]
    assert rows[1][:2] == ["run_2", "running"] and rows[1][3:] == ["1", "0"]
    assert rows[2][:2] == ["run_1", "queued"] and rows[2][3:] == ["4", "1"]

    filtered = viewer.get("/dags/etl?state=running").text
    assert [row[0] for row in table_rows(filtered)[1:]] == ["run_2"]
    assert '<option value="running" selected>running (1)</option>' in filtered
    assert viewer.get("/dags/etl?state=bogus").status_code == 422
    assert viewer.get("/dags/nope").status_code == 404


def test_runs_page_pages_by_keyset(viewer, make_run, monkeypatch):
    monkeypatch.setattr(views, "RUNS_PER_PAGE", 2)
    for number in range(1, 6):
        make_run("etl", f"run_{number}")

    first = viewer.get("/dags/etl").text
    assert [row[0] for row in table_rows(first)[1:]] == ["run_5", "run_4"]
    assert "Newer" not in first
    older = re.search(r'href="([^"]+)">Older', first).group(1).replace("&amp;", "&")
    second = viewer.get(older).text
    assert [row[0] for row in table_rows(second)[1:]] == ["run_3", "run_2"]
    third = viewer.get(re.search(r'href="([^"]+)">Older', second).group(1)).text
    assert [row[0] for row in table_rows(third)[1:]] == ["run_1"]
    assert "Older" not in third
    back = viewer.get(re.search(r'href="([^"]+)">← Newer', third).group(1)).text
    assert [row[0] for row in table_rows(back)[1:]] == ["run_3", "run_2"]


def test_runs_page_costs_the_same_number_of_queries_for_any_page_size(viewer, make_run, sql_statements):
    for number in range(6):
        make_run("etl", f"run_{number}", tasks=(("a", None), ("b", [0, 1])))
    with sql_statements() as statements:
        assert viewer.get("/dags/etl").status_code == 200
    # The user, the state counts, the page of runs, TI counts, key counts: no query per row.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 5


def test_run_page_groups_mapped_task_instances(app, viewer, make_run, worker_auth):
    made = make_run("etl", "run_1", tasks=(("submit", None), ("copy", [0, 1, 2])))
    set_states(app, "etl", "run_1", ("submit", "running"))
    put_key(viewer, worker_auth, made[("copy", 2)], "checkpoint", {"offset": 3})
    put_key(viewer, worker_auth, made[("copy", 2)], "progress", 50)

    html = viewer.get("/dags/etl/runs/run_1").text
    rows = table_rows(html)
    assert rows[0] == ["Task", "Map index", "State", "Try", "Keys"]
    assert rows[1] == ["copy 3 mapped task instances", "2"]
    assert rows[2:5] == [
        ["copy [0]", "0", "none", "0", "0"],
        ["copy [1]", "1", "none", "0", "0"],
        ["copy [2]", "2", "none", "0", "2"],
    ]
    assert rows[5] == ["submit", "—", "running", "1", "0"]
    assert 'href="/dags/etl/runs/run_1/tasks/copy?map_index=2"' in html
    assert viewer.get("/dags/etl/runs/nope").status_code == 404


def test_every_page_has_breadcrumbs(viewer, make_run):
    make_run("etl", "run_1", tasks=(("copy", [0]),))
    html = viewer.get("/dags/etl/runs/run_1/tasks/copy?map_index=0").text
    crumbs = html[html.index('aria-label="Breadcrumb"'):html.index("</nav>")]
    assert '<a href="/">DAGs</a>' in crumbs
    assert '<a href="/dags/etl">etl</a>' in crumbs
    assert '<a href="/dags/etl/runs/run_1">run_1</a>' in crumbs
    assert '<span aria-current="page">copy [0]</span>' in crumbs
    for path in ("/", "/dags/etl", "/dags/etl/runs/run_1"):
        assert 'aria-label="Breadcrumb"' in viewer.get(path).text


def test_key_page_shows_pretty_values_and_expiry(viewer, ti_id, worker_auth):
    now = utcnow()
    put_key(viewer, worker_auth, ti_id, "spark/job_id", "application_42")
    put_key(viewer, worker_auth, ti_id, "checkpoint", {"offset": 1200, "parts": [1, 2]},
            now + timedelta(hours=6, minutes=1))

    html = viewer.get(key_page()).text
    rows = table_rows(html)
    assert rows[0] == ["Key", "Value", "Updated", "Expires"]
    assert [row[0] for row in rows[1:]] == ["checkpoint", "spark/job_id"]  # ordered by key
    assert "<pre>{\n  &#34;offset&#34;: 1200,\n  &#34;parts&#34;: [\n    1,\n    2\n  ]\n}</pre>" in html
    expires = (now + timedelta(hours=6, minutes=1)).strftime("%Y-%m-%d %H:%M")
    assert rows[1][3].startswith(expires) and rows[1][3].endswith("UTC in 6 hours")
    assert rows[2][3] == "never"
    assert rows[2][2].endswith("UTC a moment ago") or "seconds ago" in rows[2][2]


def test_expired_keys_are_hidden_unless_asked_for(app, viewer, ti_id, worker_auth):
    put_key(viewer, worker_auth, ti_id, "live", 1)
    put_key(viewer, worker_auth, ti_id, "stale", 2, utcnow() - timedelta(minutes=2, seconds=5))

    hidden = viewer.get(key_page()).text
    assert [row[0] for row in table_rows(hidden)[1:]] == ["live"]
    assert "Show expired keys" in hidden

    shown = viewer.get(key_page(show_expired=1)).text
    rows = table_rows(shown)[1:]
    assert [row[0] for row in rows] == ["live", "stale expired"]
    assert rows[1][3].endswith("expired 2 minutes ago")
    assert '<tr class="expired">' in shown and '<span class="badge">expired</span>' in shown
    assert "Hide expired keys" in shown


def test_keys_and_values_are_escaped(viewer, ti_id, worker_auth):
    put_key(viewer, worker_auth, ti_id, "<script>alert(1)</script>", "<img src=x onerror=alert(2)>")
    html = viewer.get(key_page()).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


def test_long_values_are_collapsed(viewer, ti_id, worker_auth):
    put_key(viewer, worker_auth, ti_id, "big", {"items": list(range(40))})
    put_key(viewer, worker_auth, ti_id, "small", 1)
    html = viewer.get(key_page()).text
    assert html.count("<details>") == 1
    assert '<summary><code>{&#34;items&#34;:[0,1,2' in html


def test_key_page_of_a_mapped_task_instance(viewer, make_run, worker_auth):
    made = make_run(tasks=(("copy", [0, 1]),))
    put_key(viewer, worker_auth, made[("copy", 1)], "only-in-1", True)
    assert "only-in-1" in viewer.get(key_page(task_id="copy", map_index=1)).text
    assert "only-in-1" not in viewer.get(key_page(task_id="copy", map_index=0)).text
    assert viewer.get(key_page(task_id="copy")).status_code == 404  # no unmapped TI
    assert viewer.get(key_page(task_id="copy", map_index="x")).status_code == 422


def test_htmx_gets_the_rows_alone_and_polling_stops_when_not_running(app, viewer, ti_id, worker_auth):
    put_key(viewer, worker_auth, ti_id, "k", 1)

    page = viewer.get(key_page())
    assert "<html" in page.text and "HX-Request" in page.headers["Vary"]
    assert 'hx-trigger="every 3s"' not in page.text  # not running: no polling

    fragment = viewer.get(key_page(), headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # htmx stops polling on 286
    assert "<html" not in fragment.text and "<tr>" in fragment.text and "<code>k</code>" in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]

    restore = viewer.get(key_page(), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert restore.status_code == 200 and "<html" in restore.text


def test_a_running_task_instance_polls_its_rows(app, viewer, ti_id, worker_auth):
    set_states(app, "dag", "run_1", ("task", "running"))
    page = viewer.get(key_page(show_expired=1)).text
    assert 'hx-get="/dags/dag/runs/run_1/tasks/task?show_expired=1" hx-trigger="every 3s ' in page
    assert "No live keys." not in page and "This task instance has no keys." in page

    put_key(viewer, worker_auth, ti_id, "written-by-worker", 7)
    fragment = viewer.get(key_page(show_expired=1), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "written-by-worker" in fragment.text


def test_pages_load_htmx_from_static_and_send_the_csrf_token(viewer, app):
    html = viewer.get("/").text
    script = re.search(r'<script src="(/static/htmx-[\d.]+\.min\.js)"', html).group(1)
    assert viewer.get(script).status_code == 200
    assert re.search(r"hx-headers='\{&#34;X-CSRFToken&#34;: &#34;[^&]+&#34;\}'", html) or \
        re.search(r"""hx-headers='\{"X-CSRFToken": "[^"]+"\}'""", html)


def test_browser_errors_use_the_layout(viewer):
    response = viewer.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.text and 'href="/static/app.css"' in response.text


# --- users ----------------------------------------------------------------------------------


def test_users_create_reads_the_password_from_stdin(runner, client):
    result = runner.invoke(args=["users", "create", "bob", "--role", "editor", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Created user 'bob' with role editor" in result.output
    assert log_in(client, "bob").status_code == 302
    assert "editor" in client.get("/").text


def test_users_create_prompts_twice_and_defaults_to_viewer(runner, app):
    result = runner.invoke(args=["users", "create", "carol"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = users.get_by_username("carol")
        assert user.role == "viewer"
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


@pytest.mark.parametrize("args, stdin, message", [
    (["dave", "--password-stdin"], "short\n", "at least 8 characters"),
    (["bad name", "--password-stdin"], PASSWORD + "\n", "username"),
    (["dave", "--role", "root", "--password-stdin"], PASSWORD + "\n", "Invalid value for '--role'"),
])
def test_users_create_refuses_bad_input(runner, args, stdin, message):
    result = runner.invoke(args=["users", "create", *args], input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_users_create_refuses_a_duplicate(runner, make_user):
    make_user("erin")
    result = runner.invoke(args=["users", "create", "erin", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 1 and "already exists" in result.output


def test_serve_demo_creates_an_admin_user_and_prints_its_password(app, client, tmp_path, capsys):
    cli._prepare_demo(app, tmp_path, "http://127.0.0.1:8080")
    output = capsys.readouterr().out
    password = re.search(r"Admin UI login: user 'admin', password (\S+)", output).group(1)
    assert (tmp_path / "demo-admin-password").read_text() == password
    assert log_in(client, "admin", password).status_code == 302
    assert "spark_daily_aggregation" in client.get("/").text  # the demo data is there

    cli._prepare_demo(app, tmp_path, "http://127.0.0.1:8080")  # a restart keeps the login
    assert f"password {password}" in capsys.readouterr().out


def test_login_attempts_are_throttled_per_username_and_address(client, make_user):
    make_user("alice")
    for _ in range(5):
        assert "Invalid username or password." in log_in(client, "alice", "wrong password").text
    throttled = log_in(client, "alice", PASSWORD)  # even the right password is not checked now
    assert throttled.status_code == 429 and "Too many failed logins" in throttled.text
    assert client.get("/").status_code == 302
    make_user("bob")
    assert log_in(client, "bob").status_code == 302  # another username from the same address still works


def test_a_successful_login_forgets_earlier_failures(client, make_user):
    make_user("alice")
    for _ in range(4):
        log_in(client, "alice", "wrong password")
    assert log_in(client, "alice").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").text)})
    for _ in range(4):
        log_in(client, "alice", "wrong password")
    assert log_in(client, "alice").status_code == 302
