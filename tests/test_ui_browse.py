"""Browsing in the admin UI: the DAG list (last run, last activity, the filter box), a run's
page (tasks in creation order, mapped groups) and deleting a run from it (admins only)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from support import PASSWORD, csrf_token, log_in, store_url, table_rows
from webapp.auth import name_patterns, users
from webapp.extensions import db
from webapp.models import DagRun, KeyChange, TaskInstance, TaskInstanceHistory, TaskState, utcnow
from webapp.ui import views

RUN_PAGE = "/dags/etl/runs/run_1"
DELETE = RUN_PAGE + "/delete"


def count_rows(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def new_try(set_ti_state, task_id: str, run_id: str = "run_1") -> None:
    """The task instance runs, is up for retry and runs again: its second try, with a new id."""
    for state in ("running", "up_for_retry", "running"):
        set_ti_state("etl", run_id, task_id, state)


# --- a run's page ---------------------------------------------------------------------------


def test_run_page_lists_tasks_in_the_order_they_were_created_even_after_a_retry(login_as, make_run, set_ti_state):
    viewer = login_as("viewer")
    make_run("etl", "run_1", tasks=(("zeta_extract", None), ("alpha_copy", [0, 1]), ("mid_load", None)))
    new_try(set_ti_state, "zeta_extract")  # its new id is the run's newest: the order must not follow it

    rows = table_rows(viewer.get(RUN_PAGE).text)
    assert [row[0] for row in rows[1:]] == [
        "zeta_extract", "alpha_copy 2 mapped task instances", "alpha_copy map index 0", "alpha_copy map index 1",
        "mid_load",
    ]
    assert rows[1] == ["zeta_extract", "running", "2", "0"]


def test_run_page_shows_the_map_index_once_and_marks_the_group_for_its_toggle(login_as, make_run):
    viewer = login_as("viewer")
    make_run("etl", "run_1", tasks=(("copy", [3, 4]),))

    html = viewer.get(RUN_PAGE).text
    assert [row[0] for row in table_rows(html)] == ["Task", "copy 2 mapped task instances",
                                                      "copy map index 3", "copy map index 4"]
    assert "Map index" not in html and "copy [3]" not in html
    assert '<span class="group-name">copy</span>' in html  # app.js makes it the group's toggle
    assert 'href="/dags/etl/runs/run_1/tasks/copy?map_index=3"' in html


# --- deleting a run -------------------------------------------------------------------------


@pytest.fixture
def filled_run(app, make_run, set_ti_state, worker_put, admin_auth):
    """run_1 of etl: 4 task instances (one on its second try), 3 live keys and an expired one,
    one change in the history; and run_2, which must survive run_1's deletion."""
    made = make_run("etl", "run_1", tasks=(("extract", None), ("copy", [0, 1, 2])))
    other = make_run("etl", "run_2")
    worker_put(made["extract"], "offset", 1)
    new_try(set_ti_state, "extract")
    worker_put(made[("copy", 0)], "part", "a")
    worker_put(made[("copy", 2)], "gone", 1, utcnow() - timedelta(minutes=1))
    worker_put(other["task"], "kept", True)
    put = app.test_client().put(store_url("by_admin", dag="etl", task="extract"), json={"value": 7},
                                headers=admin_auth())
    assert put.status_code in (200, 201), put.text
    return made


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_see_and_may_use_delete_run(login_as, filled_run, role, app):
    client = login_as(role)
    page = client.get(RUN_PAGE).text
    assert "Delete run" not in page
    assert client.get(DELETE).status_code == 403
    assert client.post(DELETE, data={"csrf_token": csrf_token(page)}).status_code == 403
    assert count_rows(app, DagRun, DagRun.run_id == "run_1") == 1


def test_the_confirmation_names_what_goes_and_what_stays(login_as, filled_run):
    admin = login_as("admin")
    page = admin.get(RUN_PAGE).text
    form = re.search(r'<form method="get" action="([^"]+)"[^>]*>\s*<button type="submit" class="danger">Delete run',
                     page)
    assert form and form.group(1) == DELETE

    confirm = admin.get(DELETE)
    assert confirm.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", confirm.text).split())
    assert ("deletes the run with its 4 task instances (and 1 earlier try) and 3 keys "
            "(and 1 expired key not yet removed)") in text
    assert "Kept: the history of changes people and tools made to these keys" in text
    assert 'name="csrf_token"' in confirm.text and "Cancel" in text


def test_deleting_a_run_takes_its_task_instances_tries_and_keys_and_keeps_the_history(app, login_as, filled_run):
    admin = login_as("admin")
    confirm = admin.get(DELETE).text
    run_id = lambda model: model.run_id == "run_1"  # noqa: E731
    assert count_rows(app, KeyChange, run_id(KeyChange)) == 1

    response = admin.post(DELETE, data={"csrf_token": csrf_token(confirm)})
    assert response.status_code == 303 and response.headers["Location"] == "/dags/etl"
    runs_page = admin.get("/dags/etl").text
    assert ("Deleted run run_1 with 4 task instances (and 1 earlier try) and 3 keys "
            "(and 1 expired key not yet removed).") in runs_page
    assert [row[0] for row in table_rows(runs_page)[1:]] == ["run_2"]
    assert admin.get(RUN_PAGE).status_code == 404

    for model in (DagRun, TaskInstance, TaskInstanceHistory, TaskState):
        assert count_rows(app, model, run_id(model)) == 0, model
    assert count_rows(app, KeyChange, run_id(KeyChange)) == 1  # the history stays
    assert count_rows(app, TaskState, TaskState.run_id == "run_2") == 1  # the other run keeps its key


def test_deleting_the_dags_last_run_returns_to_the_dag_list(login_as, make_run):
    admin = login_as("admin")
    make_run("etl", "run_1")
    response = admin.post(DELETE, data={"csrf_token": csrf_token(admin.get(DELETE).text)})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Deleted run run_1 with 1 task instance and 0 keys." in admin.get("/").text


def test_a_run_deleted_meanwhile_is_not_an_error(login_as, make_run):
    admin = login_as("admin")
    make_run("etl", "run_1")
    make_run("etl", "run_2")
    token = csrf_token(admin.get(DELETE).text)
    assert admin.post(DELETE, data={"csrf_token": token}).status_code == 303
    again = admin.post(DELETE, data={"csrf_token": token})
    assert again.status_code == 303 and again.headers["Location"] == "/dags/etl"
    assert "Run run_1 was already gone." in admin.get("/dags/etl").text


def test_delete_run_needs_the_csrf_token(app, login_as, make_run):
    admin = login_as("admin")
    make_run("etl", "run_1")
    assert admin.post(DELETE).status_code == 400
    assert count_rows(app, DagRun) == 1


@pytest.fixture
def limited_admin(app, client):
    """An admin who sees the DAGs etl_* only, logged in."""
    with app.app_context():
        users.create("lim", PASSWORD, "admin", limits=name_patterns.Limits.parse("etl_*", None))
        db.session.commit()
    assert log_in(client, "lim").status_code == 302
    return client


def test_an_admin_limited_to_other_dags_meets_404_and_deletes_nothing(app, limited_admin, make_run):
    make_run("etl", "run_1")  # "etl" is not etl_*
    make_run("etl_daily", "run_1")
    token = csrf_token(limited_admin.get("/").text)
    assert limited_admin.get(DELETE).status_code == 404
    assert limited_admin.post(DELETE, data={"csrf_token": token}).status_code == 404
    assert count_rows(app, DagRun, DagRun.dag_id == "etl") == 1

    # The DAG they do see, they may delete runs of.
    own = "/dags/etl_daily/runs/run_1/delete"
    assert "Delete run" in limited_admin.get("/dags/etl_daily/runs/run_1").text
    assert limited_admin.post(own, data={"csrf_token": csrf_token(limited_admin.get(own).text)}).status_code == 303
    assert count_rows(app, DagRun, DagRun.dag_id == "etl_daily") == 0


# --- the DAG list ---------------------------------------------------------------------------


def set_run_times(app, run_id: str, **times) -> None:
    with app.app_context():
        db.session.execute(update(DagRun).where(DagRun.run_id == run_id).values(**times))
        db.session.commit()


def cells(html: str, dag_id: str) -> list[str]:
    return next(row for row in table_rows(html) if row[0] == dag_id)


def test_dag_list_shows_the_newest_runs_state_and_the_latest_run_time(app, login_as, make_run, set_ti_state):
    viewer = login_as("viewer")
    now = utcnow().replace(microsecond=0)
    make_run("etl", "run_1")
    make_run("etl", "run_2")
    set_ti_state("etl", "run_1", "task", "success")  # the older run finished last
    set_run_times(app, "run_1", created_at=now - timedelta(days=3), start_date=now - timedelta(days=2),
                  end_date=now - timedelta(hours=1))
    set_run_times(app, "run_2", created_at=now - timedelta(hours=5), start_date=None, end_date=None)

    html = viewer.get("/").text
    row = cells(html, "etl")
    assert row[1] == "queued"  # run_2's: the newest run, whatever finished last
    assert row[2] == f"{(now - timedelta(hours=1)):%Y-%m-%d %H:%M:%S} UTC 1 hour ago"
    assert '<span class="state state-queued">queued</span>' in html


def test_dag_list_filters_dag_ids_containing_the_text(login_as, make_run):
    viewer = login_as("viewer")
    for dag_id in ("etl_daily", "nightly_ETL", "my_etlXhourly", "reports"):
        make_run(dag_id, "run_1")

    page = viewer.get("/?q=etl")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    assert [row[0] for row in table_rows(page.text)[1:]] == ["etl_daily", "my_etlXhourly", "nightly_ETL"]
    assert '3 DAGs whose id contains “etl”.' in page.text
    assert 'value="etl"' in page.text and '<button type="submit">Filter</button>' in page.text
    assert 'hx-trigger="search, keyup delay:200ms changed"' in page.text

    # "_" is a character to find, not a wildcard.
    assert [row[0] for row in table_rows(viewer.get("/?q=l_").text)[1:]] == ["etl_daily"]
    nothing = viewer.get("/?q=zzz").text
    assert "No DAG whose id contains “zzz”." in nothing and 'value="zzz"' in nothing


def test_dag_list_answers_htmx_with_the_table_alone(login_as, make_run):
    viewer = login_as("viewer")
    make_run("etl_daily", "run_1")
    make_run("reports", "run_1")

    fragment = viewer.get("/?q=rep", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert [row[0] for row in table_rows(fragment.text)[1:]] == ["reports"]
    restored = viewer.get("/?q=rep", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.text


def test_dag_list_pages_keep_the_filter(login_as, make_run, monkeypatch):
    monkeypatch.setattr(views, "DAGS_PER_PAGE", 2)
    viewer = login_as("viewer")
    for dag_id in ("etl_a", "etl_b", "etl_c", "other"):
        make_run(dag_id, "run_1")
    first = viewer.get("/?q=etl").text
    assert [row[0] for row in table_rows(first)[1:]] == ["etl_a", "etl_b"]
    following = re.search(r'href="([^"]+)">Next', first).group(1).replace("&amp;", "&")
    assert [row[0] for row in table_rows(viewer.get(following).text)[1:]] == ["etl_c"]


def test_a_limited_person_neither_sees_nor_finds_other_dags(limited_admin, make_run):
    for dag_id in ("etl_daily", "etl", "ml_etl_train"):
        make_run(dag_id, "run_1")
    assert [row[0] for row in table_rows(limited_admin.get("/").text)[1:]] == ["etl_daily"]
    assert "No DAG whose id contains “train”." in limited_admin.get("/?q=train").text


def test_dag_list_costs_the_same_number_of_queries_for_1_or_6_dags(login_as, make_run, worker_put, sql_statements):
    viewer = login_as("viewer")

    def selects() -> int:
        with sql_statements() as statements:
            assert viewer.get("/").status_code == 200
        return len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH"))
                    and "set_config(" not in s])

    worker_put(make_run("dag_0", "run_1")["task"], "k", 1)
    one = selects()
    for number in range(1, 6):
        worker_put(make_run(f"dag_{number}", "run_1")["task"], "k", 1)
    assert selects() == one
    # The session's user, the total, the page of DAGs, their key counts.
    assert one <= 5


def test_a_dag_filter_longer_than_any_dag_id_is_refused_naming_it(login_as, make_run):
    make_run()
    viewer = login_as("viewer")
    for headers in ({}, {"HX-Request": "true"}):
        response = viewer.get("/?q=" + "a" * 60_000, headers=headers)
        assert response.status_code == 422 and "q: is 60,000 characters long" in response.text
