"""The "Expiring soon" page: task keys expiring within a chosen window, soonest first, across
the DAGs a person may see; editors extend them from there and land back on the page."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import update

from support import log_in, table_rows
from webapp.extensions import db
from webapp.models import TaskState, utcnow

HTMX = {"HX-Request": "true"}


def seed(make_run, worker_put):
    """Keys expiring in 30 minutes, 3 hours, 2 days and 10 days, one that never expires and
    one already expired, in two DAGs."""
    now = utcnow()
    ml = make_run("ml_daily", "run_1", tasks=(("train", None), ("shard", [0, 1])))
    finance = make_run("finance_close", "run_7", tasks=(("post", None),))
    worker_put(ml["train"], "checkpoint", {"epoch": 3}, now + timedelta(hours=3))
    worker_put(ml[("shard", 1)], "offset", 42, now + timedelta(minutes=30))
    worker_put(ml["train"], "later", 1, now + timedelta(days=2))
    worker_put(ml["train"], "much_later", 1, now + timedelta(days=10))
    worker_put(ml["train"], "forever", 1)
    worker_put(ml["train"], "gone", 1, now - timedelta(minutes=1))
    worker_put(finance["post"], "ledger", {"rows": 1}, now + timedelta(hours=5))
    return ml, finance


def listed(html: str) -> list[str]:
    """The keys in the table, in order."""
    return [row[4].removesuffix(" set aside") for row in table_rows(html)[1:] if len(row) > 4]


def extend_form(html: str, key: str) -> dict:
    """A row's Extend form: where it posts and its hidden fields."""
    for form in re.findall(r'<form method="post" action="[^"]*"[^>]*class="extend".*?</form>', html, re.S):
        action = unescape(re.search(r'action="([^"]+)"', form).group(1))
        if f"key={key}" in action:
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
            return {"action": action, **{name: unescape(value) for name, value in fields.items()}}
    raise AssertionError(f"no Extend form for {key!r}")


def expiry_of(app, key: str):
    with app.app_context():
        return db.session.execute(db.select(TaskState.expires_at).where(TaskState.key == key)).scalar_one()


def test_keys_expiring_within_the_window_soonest_first(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    day = viewer.get("/expiring").text  # a day unless chosen
    assert listed(day) == ["offset", "checkpoint", "ledger"]
    assert "3 keys expiring within 1 day." in day
    assert listed(viewer.get("/expiring?within=1h").text) == ["offset"]
    assert listed(viewer.get("/expiring?within=7d").text) == ["offset", "checkpoint", "ledger", "later"]
    [header, first, second, _] = table_rows(day)
    assert header == ["DAG", "Run", "Task", "Map index", "Key", "Value", "Expires"]
    assert first[:6] == ["ml_daily", "run_1", "shard", "1", "offset", "42"]
    assert first[6].endswith("in 30 minutes") and second[6].endswith("in 3 hours")
    assert second[5] == '{"epoch":3}'


def test_rows_link_their_dag_run_and_task_instance(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    html = login_as("viewer").get("/expiring").text
    assert '<a href="/dags/ml_daily">ml_daily</a>' in html
    assert '<a href="/dags/ml_daily/runs/run_1">run_1</a>' in html
    assert '<a href="/dags/ml_daily/runs/run_1/tasks/shard?map_index=1"><code>offset</code></a>' in html
    assert '<a href="/dags/ml_daily/runs/run_1/tasks/train"><code>checkpoint</code></a>' in html


def test_htmx_gets_the_results_alone_and_a_browser_the_page(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    page = viewer.get("/expiring?within=7d")
    fragment = viewer.get("/expiring?within=7d", headers=HTMX)
    assert "<html" in page.text and 'id="expiring-results"' in page.text
    assert "<html" not in fragment.text and 'name="within"' not in fragment.text
    assert table_rows(fragment.text) == table_rows(page.text)
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    assert 'hx-push-url="true"' in page.text and 'hx-target="#expiring-results"' in page.text
    assert '<option value="7d" selected>7 days</option>' in page.text
    assert '<a href="/expiring">Expiring soon</a>' in viewer.get("/").text  # in every page's header


def test_fifty_a_page(login_as, make_run, worker_put):
    ti = make_run()["task"]
    soon = utcnow() + timedelta(hours=2)
    for number in range(51):
        worker_put(ti, f"k{number:02}", number, soon + timedelta(seconds=number))
    viewer = login_as("viewer")
    first = viewer.get("/expiring").text
    assert listed(first) == [f"k{number:02}" for number in range(50)]
    assert "51 keys expiring" in first and "1–50 of 51" in first
    second = viewer.get(unescape(re.search(r'href="([^"]+)">Next', first).group(1))).text
    assert listed(second) == ["k50"]


def test_an_unknown_window_is_refused_naming_it(login_as):
    response = login_as("viewer").get("/expiring?within=2d")
    assert response.status_code == 422 and "within: must be one of 1h, 1d, 7d" in response.text


def test_someone_limited_to_some_dags_never_sees_the_others(app, client, make_run, worker_put, make_user):
    seed(make_run, worker_put)
    make_user("lena", "editor", dags="ml_*")
    assert log_in(client, "lena").status_code == 302
    for headers in ({}, HTMX):
        html = client.get("/expiring?within=7d", headers=headers).text
        assert listed(html) == ["offset", "checkpoint", "later"]
        assert "finance_close" not in html and "ledger" not in html


def test_a_viewer_sees_no_extend_buttons_and_an_editor_does(app, client, make_run, worker_put, make_user):
    seed(make_run, worker_put)
    log_in(client, make_user("vera", "viewer"))
    as_viewer = client.get("/expiring").text
    assert "Extend" not in as_viewer and table_rows(as_viewer)[0][-1] == "Expires"
    editor = app.test_client()
    log_in(editor, make_user("eddie", "editor"))
    as_editor = editor.get("/expiring").text
    assert table_rows(as_editor)[0][-1] == "Actions"
    for label in ("1 hour", "1 day", "7 days"):
        assert f'aria-label="Extend offset by {label}"' in as_editor


def test_extend_moves_the_expiry_and_lands_back_on_the_page(app, login_as, make_run, worker_put):
    seed(make_run, worker_put)
    editor = login_as("editor")
    page = editor.get("/expiring?within=7d").text
    form = extend_form(page, "offset")
    assert form["next"] == "/expiring?within=7d"
    before = expiry_of(app, "offset")
    response = editor.post(form["action"], data={**form, "by": "1d"})
    assert response.status_code == 303 and response.headers["Location"] == "/expiring?within=7d"
    assert expiry_of(app, "offset") - before == timedelta(days=1)
    back = editor.get(response.headers["Location"]).text
    assert "Extended key &#39;offset&#39; by 1 day." in back
    assert listed(back) == ["checkpoint", "ledger", "offset", "later"]  # now in a day and 30 minutes
    assert "Extended key" not in editor.get("/expiring?within=7d").text  # said once


def test_an_extend_refused_lands_back_on_the_page_saying_why(app, login_as, make_run, worker_put):
    ml, _finance = seed(make_run, worker_put)
    editor = login_as("editor")
    form = extend_form(editor.get("/expiring").text, "checkpoint")
    worker_put(ml["train"], "checkpoint", {"epoch": 4}, utcnow() + timedelta(hours=4))  # the worker moves on
    expires = expiry_of(app, "checkpoint")
    response = editor.post(form["action"], data={**form, "by": "7d"})
    assert response.status_code == 303 and response.headers["Location"] == "/expiring"
    assert "A worker changed this key since you opened the form" in editor.get("/expiring").text
    assert expiry_of(app, "checkpoint") == expires


@pytest.mark.parametrize("unsafe", ["//evil.example/expiring", "https://evil.example/", "/expiring\r\nX: 1"])
def test_a_next_off_this_site_goes_to_the_task_instance_page(login_as, make_run, worker_put, unsafe):
    seed(make_run, worker_put)
    editor = login_as("editor")
    form = extend_form(editor.get("/expiring").text, "checkpoint")
    response = editor.post(form["action"], data={**form, "next": unsafe, "by": "1h"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/dags/ml_daily/runs/run_1/tasks/train"


def test_a_dag_limited_editor_cannot_extend_another_dags_key(app, client, make_run, worker_put, make_user):
    seed(make_run, worker_put)
    admin = app.test_client()
    log_in(admin, make_user("admin", "admin"))
    form = extend_form(admin.get("/expiring").text, "ledger")
    make_user("lena", "editor", dags="ml_*")
    assert log_in(client, "lena").status_code == 302
    expires = expiry_of(app, "ledger")
    response = client.post(form["action"], data={**form, "csrf_token": extend_form(
        client.get("/expiring").text, "offset")["csrf_token"], "by": "7d"})
    assert response.status_code == 404 and expiry_of(app, "ledger") == expires


def test_a_key_set_aside_is_listed_but_not_offered_for_extending(app, login_as, make_run, worker_put):
    ml, _finance = seed(make_run, worker_put)
    with app.app_context():  # as if written for another item of the mapped list
        db.session.execute(update(TaskState).where(TaskState.key == "offset").values(map_key="item-gone"))
        db.session.commit()
    html = login_as("editor").get("/expiring").text
    [row] = [row for row in table_rows(html)[1:] if row[4].startswith("offset")]
    assert row[4] == "offset set aside" and "Extend" not in row[-1]
    assert 'aria-label="Extend offset by' not in html and 'aria-label="Extend checkpoint by 1 day"' in html
