"""In a browser, at a desktop's width and a phone's: the page of keys stays in step without
reloads. Add inserts the row and empties the form; Delete updates the Keys count and the
history; Undo brings a deleted key back; the history filters as one types and the address
follows; a task instance's keys exported to a file and imported into another arrive whole."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from support import ti_page_url

from .conftest import ETL_DAG as DAG
from .conftest import ETL_RUN as RUN
from .test_browser import assert_same_document, confirm_delete, key_row, key_rows, mark_document


@pytest.fixture(params=[1280, 390], ids=["1280px", "390px"], autouse=True)
def width(request, page):
    """Every test here runs at both widths."""
    page.set_viewport_size({"width": request.param, "height": 844})
    return request.param


def key_count(page):
    return page.locator("#key-count")


def history_actions(page):
    return page.locator("#history tbody tr td:nth-child(3)")


def test_add_inserts_the_row_and_updates_count_and_history_without_a_reload(page, editor_on, etl_run, stored):
    editor_on()
    mark_document(page)
    expect(key_count(page)).to_have_text("0")
    page.get_by_label("Key", exact=True).fill("spark/job_id")
    page.get_by_label("Value", exact=True).fill('{"job": "application_42"}')
    page.get_by_role("button", name="Add key").click()

    expect(key_row(page, "spark/job_id")).to_contain_text("Added.")
    expect(key_rows(page).filter(has_text="No live keys.")).to_be_hidden()
    expect(key_count(page)).to_have_text("1")
    expect(history_actions(page)).to_have_text(["created"])
    expect(page.get_by_label("Key", exact=True)).to_have_value("")  # the form is ready for the next key
    assert stored("submit", "spark/job_id") is not None
    assert_same_document(page)

    page.get_by_label("Key", exact=True).fill("spark/job_id")
    page.get_by_label("Value", exact=True).fill("2")
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("#add-key-section")).to_contain_text("already exists")  # refused in place, typed text kept
    expect(page.get_by_label("Key", exact=True)).to_have_value("spark/job_id")
    expect(key_count(page)).to_have_text("1")
    assert_same_document(page)


def test_delete_then_undo_restores_the_key_and_everything_follows(page, editor_on, etl_run, worker_put, stored):
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100}, "2099-01-01T00:00:00+00:00")
    worker_put(etl_run["submit"], "other", "stays")
    editor_on()
    mark_document(page)
    expect(key_count(page)).to_have_text("2")
    confirm_delete(page, "checkpoint")

    notice = key_rows(page).filter(has_text="Deleted key checkpoint.")
    expect(notice).to_be_visible()
    expect(key_count(page)).to_have_text("1")
    expect(history_actions(page)).to_have_text(["deleted"])
    assert stored("submit", "checkpoint") is None

    notice.get_by_role("button", name="Undo deleting checkpoint").click()
    expect(key_row(page, "checkpoint")).to_contain_text("Restored.")
    expect(key_row(page, "checkpoint")).to_contain_text('"offset": 100')
    expect(key_count(page)).to_have_text("2")
    expect(history_actions(page)).to_have_text(["restored", "deleted"])
    assert stored("submit", "checkpoint")[0] == '{"offset":100}'
    assert_same_document(page)


def test_the_history_filters_as_one_types_and_the_address_follows(page, editor_on, etl_run, worker_put):
    for key in ("alpha", "beta"):
        worker_put(etl_run["submit"], key, 1)
    editor_on()
    for key in ("alpha", "beta"):
        confirm_delete(page, key)
    page.reload()  # a fresh page: typing starts with htmx ready, not while it settles the last swap
    expect(history_actions(page)).to_have_count(2)
    mark_document(page)
    page.get_by_label("Key contains").fill("alp")
    expect(page.locator("#history tbody td.key")).to_have_text(["alpha"])
    expect(page).to_have_url(re.compile(re.escape(ti_page_url(DAG, RUN, "submit")) + r"\?.*history_key=alp"))
    assert_same_document(page)


def test_export_then_import_copies_a_task_instances_keys(page, editor_on, etl_run, worker_put, tmp_path, app):
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100}, "2099-01-01T00:00:00+00:00")
    worker_put(etl_run["submit"], "job_id", "application_42")
    editor_on()
    with page.expect_download() as download:
        page.get_by_role("link", name="Export keys (JSON)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "etl_manual_1_submit.keys.json"

    page.goto(ti_page_url(DAG, RUN, "copy", map_index=1))
    page.get_by_label("File of keys").set_input_files(saved)
    page.get_by_role("button", name="Import keys").click()
    expect(page.get_by_role("status").filter(has_text="Imported 2 keys.")).to_be_visible()
    expect(key_rows(page)).to_have_count(2)
    expect(key_row(page, "checkpoint")).to_contain_text('"offset": 100')
    expect(key_row(page, "checkpoint")).to_contain_text("2099-01-01 00:00:00 UTC")
    expect(history_actions(page)).to_have_text(["imported", "imported"])

    page.get_by_label("File of keys").set_input_files(saved)  # again: the keys exist now
    page.get_by_role("button", name="Import keys").click()
    expect(page.locator("#import-file-error")).to_contain_text("2 of these keys already exist")


def test_clear_confirms_in_place_and_empties_the_table_without_a_reload(page, editor_on, etl_run, worker_put, stored):
    for key in ("a", "b"):
        worker_put(etl_run["submit"], key, key)
    editor_on()
    mark_document(page)
    page.get_by_role("button", name="Clear all keys", exact=True).click()
    expect(page.locator("#clear-slot").get_by_role("alert")).to_contain_text("start over")
    page.locator("#clear-slot").get_by_role("link", name="Cancel").click()  # closes, clears nothing
    expect(page.locator("#clear-slot")).to_be_empty()
    expect(key_count(page)).to_have_text("2")

    page.get_by_role("button", name="Clear all keys", exact=True).click()
    page.locator("#clear-slot").get_by_role("button", name="Clear", exact=True).click()
    expect(page.locator("#clear-slot")).to_contain_text("Cleared 2 keys of this task instance.")
    expect(key_rows(page)).to_have_text(["No live keys."])
    expect(key_count(page)).to_have_text("0")
    expect(history_actions(page)).to_have_text(["cleared", "cleared"])
    assert [stored("submit", key) for key in ("a", "b")] == [None, None]
    assert_same_document(page)
