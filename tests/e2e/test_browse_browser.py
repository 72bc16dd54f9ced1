"""Browsing in a real browser: a run's mapped task folds away and back under its name, and the
DAG list follows its filter box as one types."""

from __future__ import annotations

import re

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect

DAG, RUN = "etl", "manual_1"


def test_a_mapped_tasks_map_indexes_fold_away_and_back_at_1280(page, make_user, make_run, browser_login):
    make_run(dag_id=DAG, run_id=RUN, tasks=(("copy", [0, 1, 2]), ("submit", None)))
    browser_login(make_user("olga", "viewer"))
    page.goto(f"/dags/{DAG}/runs/{RUN}")

    toggle = page.get_by_role("button", name="copy", exact=True)
    map_indexes = [page.get_by_role("link", name=f"copy map index {index}", exact=True) for index in range(3)]
    submit = page.get_by_role("link", name="submit", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "true")
    for link in map_indexes:
        expect(link).to_be_visible()

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    for link in map_indexes:
        expect(link).to_be_hidden()
    expect(submit).to_be_visible()  # another task's row stays
    expect(page.get_by_role("rowheader", name=re.compile(r"^copy\b"))).to_contain_text("3 mapped task instances")

    toggle.focus()
    page.keyboard.press("Enter")  # a real button: the keyboard opens it too
    expect(toggle).to_have_attribute("aria-expanded", "true")
    for link in map_indexes:
        expect(link).to_be_visible()
    map_indexes[1].click()
    expect(page.get_by_role("heading", level=1)).to_have_text("copy map index 1")


def test_the_dag_list_follows_its_filter_box_as_one_types(page, make_user, make_run, browser_login):
    for dag_id in ("etl_daily", "reports_weekly", "etl_hourly"):
        make_run(dag_id=dag_id, run_id=RUN)
    browser_login(make_user("olga", "viewer"))
    page.goto("/")
    page.evaluate("window.__e2eSameDocument = true")

    dag_links = page.locator("#dag-list tbody td.dag a")
    expect(dag_links).to_have_text(["etl_daily", "etl_hourly", "reports_weekly"])
    page.get_by_label("DAG id contains").press_sequentially("rep")
    expect(dag_links).to_have_text(["reports_weekly"])
    expect(page).to_have_url(re.compile(r"/\?q=rep$"))
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was fully reloaded"
    expect(page.get_by_label("DAG id contains")).to_be_focused()
