"""The search page as one types: results alone for htmx (the URL follows), the DAG box's
suggestions, and a DAG id that names no DAG said so, with the DAGs whose id contains it."""

from __future__ import annotations

import re

from support import table_rows


def seed(make_run, worker_put):
    daily = make_run("ml_training_daily", "run_1", tasks=(("train", None),))
    weekly = make_run("ml_training_weekly", "run_1", tasks=(("train", None),))
    secret = make_run("finance_close", "run_1", tasks=(("post", None),))
    worker_put(daily["train"], "checkpoint/epoch", {"epoch": 3})
    worker_put(weekly["train"], "checkpoint/epoch", {"epoch": 9})
    worker_put(secret["post"], "checkpoint/ledger", {"rows": 1})


def test_htmx_gets_the_results_alone_and_a_browser_the_page(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    page = viewer.get("/search?q=checkpoint")
    fragment = viewer.get("/search?q=checkpoint", headers={"HX-Request": "true"})
    assert "<html" in page.text and 'id="search-results"' in page.text
    assert "<html" not in fragment.text and "<form" not in fragment.text
    found = table_rows(fragment.text)
    assert [row[4] for row in found[1:]] == ["checkpoint/ledger", "checkpoint/epoch", "checkpoint/epoch"]
    assert found == table_rows(page.text)[:len(found)]
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    assert 'hx-push-url="true"' in page.text and 'hx-target="#search-results"' in page.text


def test_results_link_their_dag_and_run_and_show_the_value_and_how_long_ago(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    html = login_as("viewer").get("/search?q=checkpoint&dag_id=ml_training_daily").text
    [header, row] = table_rows(html)[:2]
    assert header[:8] == ["DAG", "Run", "Task", "Map index", "Key", "Value", "Updated", "Expires"]
    assert row[5] == '{"epoch":3}' and row[6].endswith("ago")
    assert '<a href="/dags/ml_training_daily">ml_training_daily</a>' in html
    assert '<a href="/dags/ml_training_daily/runs/run_1">run_1</a>' in html


def test_the_dag_box_suggests_the_dags_there_are(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    html = login_as("viewer").get("/search").text
    suggested = re.findall(r'<option value="([^"]+)">', html[html.index('<datalist id="dag-ids">'):])
    assert suggested == ["finance_close", "ml_training_daily", "ml_training_weekly"]
    assert 'list="dag-ids"' in html


def test_a_dag_id_naming_no_dag_says_so_and_offers_the_ones_containing_it(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    html = viewer.get("/search?q=checkpoint&dag_id=ml_training").text
    assert "No DAG is named <code>ml_training</code>" in html
    assert re.findall(r'dag_id=(ml_training_\w+)"><code>', html) == ["ml_training_daily", "ml_training_weekly"]
    assert "0 keys found" in html

    nothing_like_it = viewer.get("/search?q=checkpoint&dag_id=nope").text
    assert "No DAG is named <code>nope</code>" in nothing_like_it and "Leave the box empty" in nothing_like_it
    exact = viewer.get("/search?q=checkpoint&dag_id=ml_training_daily").text
    assert "No DAG is named" not in exact


def test_someone_limited_to_some_dags_is_never_offered_the_others(app, make_run, worker_put, make_user, client):
    from support import log_in
    from webapp.auth import users
    from webapp.extensions import db

    seed(make_run, worker_put)
    make_user("lena", "viewer")
    with app.app_context():
        users.set_limits(users.get_by_username("lena"), dags="ml_*", actor="test")
        db.session.commit()
    assert log_in(client, "lena").status_code == 302
    html = client.get("/search?q=checkpoint&dag_id=finance").text
    assert "finance_close" not in html and "No DAG is named <code>finance</code>" in html


def test_a_dag_is_found_however_many_ids_contain_its_own(login_as, make_run):
    for prefix in "abcdefghijkl":  # twelve ids containing "etl" that sort before it
        make_run(f"{prefix}_etl")
    make_run("etl")
    html = login_as("viewer").get("/search?q=x&dag_id=etl").text
    assert "No DAG is named" not in html
