"""The admin UI through Flask's test client, with CSRF protection on as in production."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from support import PASSWORD, csrf_token, log_in, shown_values, table_rows, ti_page_url
from webapp.auth import users
from webapp.cli import serve as cli
from webapp.extensions import db
from webapp.models import utcnow
from webapp.ui import views


@pytest.fixture
def viewer(login_as):
    """A test client logged in as the viewer alice."""
    return login_as("viewer", "alice")


# --- logging in and out -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/dags/dag", "/dags/dag/runs/run_1",
                                  "/dags/dag/runs/run_1/tasks/task?map_index=2"])
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


def test_worker_api_needs_no_csrf_token(client, ti_id, worker_put):
    worker_put(ti_id, "k", 1)  # a bearer token, not a cookie: exempt


# --- pages --------------------------------------------------------------------------------


def test_dags_page_counts_runs_task_instances_with_keys_and_live_keys(app, viewer, make_run, worker_put):
    etl = make_run("etl", "run_1", tasks=(("a", None), ("b", None), ("c", [0, 1])))
    make_run("etl", "run_2")
    other = make_run("other", "run_1")
    worker_put(etl["a"], "one", 1)
    worker_put(etl["a"], "two", 2)
    worker_put(etl[("c", 1)], "three", 3)
    worker_put(etl["b"], "gone", 4, utcnow() - timedelta(minutes=1))  # expired: not counted
    worker_put(other["task"], "x", "y")

    response = viewer.get("/")
    assert response.status_code == 200
    rows = table_rows(response.text)
    assert rows[0] == ["DAG", "Last run", "Last activity", "Runs", "Task instances with keys", "Keys"]
    # Last run and last activity: tests/test_ui_browse.py.
    assert [row[:1] + row[3:] for row in rows[1:]] == [["etl", "2", "2", "3"], ["other", "1", "1", "1"]]
    assert '<a href="/dags/etl">etl</a>' in response.text


def test_dags_page_when_empty(viewer):
    assert "No DAG runs yet" in viewer.get("/").text


def test_runs_page_lists_runs_with_counts_and_filters_by_state(viewer, make_run, set_ti_state, worker_put):
    first = make_run("etl", "run_1", tasks=(("a", None), ("b", [0, 1, 2])))
    make_run("etl", "run_2")
    set_ti_state("etl", "run_2", "task", "running")
    worker_put(first["a"], "k", 1)

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
    # The user, the state counts, the page of runs, TI counts, key counts: no query per row
    # (PostgreSQL's per-transaction deadline, set_config, is not a query of the page).
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "set_config(" not in s]
    assert len(queries) <= 5


def test_run_page_groups_mapped_task_instances(viewer, make_run, set_ti_state, worker_put):
    made = make_run("etl", "run_1", tasks=(("submit", None), ("copy", [0, 1, 2])))
    set_ti_state("etl", "run_1", "submit", "running")
    worker_put(made[("copy", 2)], "checkpoint", {"offset": 3})
    worker_put(made[("copy", 2)], "progress", 50)

    html = viewer.get("/dags/etl/runs/run_1").text
    rows = table_rows(html)
    assert rows[0] == ["Task", "State", "Try", "Keys"]
    # In the order the tasks were created; each map index under its task ("copy " is there for
    # screen readers, hidden on screen).
    assert rows[1] == ["submit", "running", "1", "0"]
    assert rows[2] == ["copy 3 mapped task instances", "2"]
    assert rows[3:6] == [
        ["copy map index 0", "none", "0", "0"],
        ["copy map index 1", "none", "0", "0"],
        ["copy map index 2", "none", "0", "2"],
    ]
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


def test_key_page_shows_pretty_values_and_expiry(viewer, ti_id, worker_put):
    now = utcnow()
    worker_put(ti_id, "spark/job_id", "application_42")
    worker_put(ti_id, "checkpoint", {"offset": 1200, "parts": [1, 2]}, now + timedelta(hours=6, minutes=1))

    html = viewer.get(ti_page_url()).text
    rows = table_rows(html)
    assert rows[0] == ["Key ↑", "Value", "Updated", "Expires"]  # ordered by key, the default
    assert [row[0] for row in rows[1:]] == ["checkpoint", "spark/job_id"]  # ordered by key
    assert '{\n  "offset": 1200,\n  "parts": [\n    1,\n    2\n  ]\n}' in shown_values(html)
    expires = (now + timedelta(hours=6, minutes=1)).strftime("%Y-%m-%d %H:%M")
    assert rows[1][3].startswith(expires) and rows[1][3].endswith("UTC in 6 hours")
    assert rows[2][3] == "never"
    assert re.search(r"UTC (a moment|a second|\d+ seconds) ago$", rows[2][2]), rows[2][2]


def test_expired_keys_are_hidden_unless_asked_for(app, viewer, ti_id, worker_put):
    worker_put(ti_id, "live", 1)
    worker_put(ti_id, "stale", 2, utcnow() - timedelta(minutes=2, seconds=5))

    hidden = viewer.get(ti_page_url()).text
    assert [row[0] for row in table_rows(hidden)[1:]] == ["live"]
    assert "Show expired keys" in hidden

    shown = viewer.get(ti_page_url(show_expired=1)).text
    rows = table_rows(shown)[1:]
    assert [row[0] for row in rows] == ["live", "stale expired"]
    assert rows[1][3].endswith("expired 2 minutes ago")
    assert '<tr class="expired">' in shown and '<span class="badge">expired</span>' in shown
    assert "Hide expired keys" in shown


def test_long_values_are_collapsed(viewer, ti_id, worker_put):
    worker_put(ti_id, "big", {"items": list(range(40))})
    worker_put(ti_id, "small", 1)
    html = viewer.get(ti_page_url()).text
    assert html.count("<details>") == 1
    assert '<summary><code>{&#34;items&#34;:[0,1,2' in html


def test_key_page_of_a_mapped_task_instance(viewer, make_run, worker_put):
    made = make_run(tasks=(("copy", [0, 1]),))
    worker_put(made[("copy", 1)], "only-in-1", True)
    assert "only-in-1" in viewer.get(ti_page_url(task_id="copy", map_index=1)).text
    assert "only-in-1" not in viewer.get(ti_page_url(task_id="copy", map_index=0)).text
    assert viewer.get(ti_page_url(task_id="copy")).status_code == 404  # no unmapped TI
    assert viewer.get(ti_page_url(task_id="copy", map_index="x")).status_code == 422


def test_htmx_gets_the_rows_alone_and_polling_stops_when_not_running(viewer, ti_id, worker_put):
    worker_put(ti_id, "k", 1)

    page = viewer.get(ti_page_url())
    assert "<html" in page.text and "HX-Request" in page.headers["Vary"]
    assert "every 3s" not in page.text  # not running: no polling (the running TI's page below has it)

    fragment = viewer.get(ti_page_url(), headers={"HX-Request": "true"})
    assert fragment.status_code == 286  # htmx stops polling on 286
    assert "<html" not in fragment.text and "<tr>" in fragment.text and "<code>k</code>" in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]

    restore = viewer.get(ti_page_url(), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert restore.status_code == 200 and "<html" in restore.text


def test_a_running_task_instance_polls_its_rows(viewer, ti_id, set_ti_state, worker_put):
    set_ti_state("dag", "run_1", "task", "running")
    page = viewer.get(ti_page_url(show_expired=1)).text
    # Polling, and keeping the show_expired filter; tests/e2e sees the rows refresh (and pause while editing).
    assert 'hx-get="/dags/dag/runs/run_1/tasks/task?show_expired=1" hx-trigger="every 3s' in page
    assert "No live keys." not in page and "This task instance has no keys." in page

    worker_put(ti_id, "written-by-worker", 7)
    fragment = viewer.get(ti_page_url(show_expired=1), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "written-by-worker" in fragment.text


def test_pages_load_htmx_from_static_and_send_the_csrf_token(viewer):
    html = viewer.get("/").text
    script = re.search(r'<script src="(/static/htmx-[\d.]+\.min\.js)"', html).group(1)
    assert viewer.get(script).status_code == 200
    # htmx sends these headers with every request it makes: the session's CSRF token.
    # (test_ui_editing.py posts with it as a header; Flask-WTF accepts it there.)
    assert json.loads(re.search(r"<body[^>]* hx-headers='([^']+)'", html).group(1)) == {"X-CSRFToken": csrf_token(html)}


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


def test_login_attempts_are_throttled_per_username(client, make_user):
    make_user("alice")
    for _ in range(10):
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


def test_every_page_names_an_icon_that_is_served(client, login_as, make_run):
    """Browsers ask for /favicon.ico (a 404 on every page) unless the page names its icon."""
    make_run()
    pages = [client.get("/login").get_data(as_text=True)]
    login_as("viewer", "ivy")
    pages += [client.get(path).get_data(as_text=True) for path in ("/", "/dags/dag", "/search", "/api/v2/docs")]
    icons = {re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', page).group(1) for page in pages}
    [icon] = icons
    response = client.get(icon)
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.get_data(as_text=True).startswith("<svg")


@pytest.mark.parametrize("delta, shown", [
    (timedelta(days=2) - timedelta(seconds=5), "2 days"), (timedelta(days=23), "23 days"),
    (timedelta(days=30), "30 days"), (timedelta(hours=1, minutes=59), "2 hours"), (timedelta(seconds=90), "2 minutes"),
    (timedelta(hours=23, minutes=59, seconds=40), "1 day"), (timedelta(days=90), "3 months"),
    (timedelta(days=400), "1 year"), (timedelta(seconds=30), "30 seconds"), (timedelta(milliseconds=200), "a moment"),
])
def test_relative_times_round_to_the_unit_they_show(delta, shown):
    """A 2-day expiry read "in a day" and 23 days "in a month" with the library this replaced."""
    from webapp.ui import formatting

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert formatting.expiry(now + delta, now) == f"in {shown}"
    assert formatting.ago(now - delta, now) == f"{shown} ago"


def test_each_value_shows_its_json_type_and_size_and_copy_buttons_wait_for_the_script(login_as, ti_id, worker_put):
    worker_put(ti_id, "obj", {"rows": 12})
    worker_put(ti_id, "big", "x" * 3000)
    worker_put(ti_id, "flag", True)
    html = login_as("viewer").get(ti_page_url()).text
    assert '<small class="facts">object · 11 B</small>' in html
    assert '<small class="facts">string · 2.9 kB</small>' in html
    assert '<small class="facts">boolean · 4 B</small>' in html
    # Copy needs the script: hidden until it runs, named for assistive technology.
    assert '<button type="button" class="copy" hidden aria-label="Copy key obj"></button>' in html
    assert '<button type="button" class="copy" hidden aria-label="Copy value of obj"></button>' in html
