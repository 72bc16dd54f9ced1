"""The admin UI in a real browser (Chromium through Playwright) against the real server
process (``taskstore serve``, gunicorn), found by their accessible names (as a screen reader user would).

The waits are Playwright's auto-waiting and ``expect`` timeouts (10 s). One test waits on
purpose: that an open edit form outlives the polling needs time for polls to happen.
"""

from __future__ import annotations

import re

import pytest

from support import PASSWORD, ti_page_url

from .conftest import ETL_DAG as DAG
from .conftest import ETL_RUN as RUN

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect

POLL_SECONDS = 3  # a running task instance's key table refreshes this often


def url_pattern(path: str) -> re.Pattern:
    """Matches a page's full URL ending in ``path`` (for ``expect(page).to_have_url``)."""
    return re.compile(re.escape(path) + "$")


def mark_document(page) -> None:
    """Tag the current document; any full page load (navigation, reload, form post) loses it."""
    page.evaluate("window.__e2eSameDocument = true")


def assert_same_document(page) -> None:
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was fully reloaded"


def key_rows(page):
    return page.locator("#key-rows").get_by_role("row")


def key_row(page, key: str):
    """The key table's row for one key, found by its first cell: the key (then maybe a notice
    such as "Saved."). Slashes are escaped: Playwright's selector would end the regex there."""
    pattern = "^" + re.escape(key).replace("/", "\\/") + r"(\s|$)"
    return key_rows(page).filter(has=page.get_by_role("cell", name=re.compile(pattern)))


def editing_row(page):
    """The row an open inline form replaced (the one with a Save button)."""
    return key_rows(page).filter(has=page.get_by_role("button", name="Save", exact=True))


# --- logging in and finding a task instance -----------------------------------------------


def test_login_refuses_a_wrong_password_then_lands_on_the_dags_page(page, make_user, etl_run):
    make_user("olga", "viewer")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")

    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("DAGs")
    expect(page.get_by_role("link", name=DAG, exact=True)).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_login_returns_to_the_page_asked_for(page, make_user, etl_run):
    make_user("olga", "viewer")
    page.goto(ti_page_url(DAG, RUN, "copy", map_index=2))
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url_pattern(ti_page_url(DAG, RUN, "copy", map_index=2)))
    expect(page.get_by_role("heading", level=1)).to_have_text("copy map index 2")


def test_a_copied_session_cookie_stops_working_the_moment_its_user_logs_out(page, browser, live_server, make_user,
                                                                            browser_login, etl_run):
    make_user("olga", "viewer")
    browser_login("olga")
    thief = browser.new_context(base_url=live_server)
    try:
        thief.add_cookies(page.context.cookies())  # the cookie, copied to another browser
        stolen = thief.new_page()
        stolen.goto("/")
        expect(stolen.get_by_role("heading", level=1)).to_have_text("DAGs")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(url_pattern("/login"))
        stolen.goto("/")
        expect(stolen).to_have_url(url_pattern("/login?next=/"))
        assert stolen.request.get("/api/v2/dags").status == 401
    finally:
        thief.close()


def test_drill_down_from_dags_to_a_mapped_task_instance_by_links(page, make_user, browser_login, etl_run, worker_put):
    worker_put(etl_run[("copy", 1)], "checkpoint", {"partition": "dt=2026-11-02", "last_object": "part-00042"})
    browser_login(make_user("olga", "viewer"))

    dags = page.get_by_role("row").filter(has=page.get_by_role("link", name=DAG, exact=True))
    # Last run, last activity (when the run was created, "… ago"), runs, TIs with keys, keys.
    expect(dags.get_by_role("cell")).to_have_text([DAG, "queued", re.compile(r"UTC.*ago$"), "1", "1", "1"])
    dags.get_by_role("link", name=DAG, exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(DAG)
    page.get_by_role("link", name=RUN, exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(RUN)
    expect(page.get_by_role("rowheader", name=re.compile(r"^copy\b"))).to_contain_text("3 mapped task instances")
    page.get_by_role("link", name="copy map index 1", exact=True).click()

    expect(page).to_have_url(url_pattern(ti_page_url(DAG, RUN, "copy", map_index=1)))
    expect(page.get_by_role("heading", level=1)).to_have_text("copy map index 1")
    row = key_row(page, "checkpoint")
    expect(row).to_contain_text('"last_object": "part-00042"')
    expect(row).to_contain_text("UTC")

    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs.get_by_role("link")).to_have_text(["DAGs", DAG, RUN])
    crumbs.get_by_role("link", name=RUN, exact=True).click()
    page.get_by_role("link", name="submit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("submit")
    expect(key_rows(page)).to_have_text(["No live keys."])


def test_search_finds_a_key_by_part_of_its_name_and_leads_to_its_task_instance(
        page, make_user, browser_login, make_run, etl_run, worker_put):
    reports = make_run(dag_id="reports", run_id="daily_1")
    worker_put(etl_run[("copy", 1)], "spark/checkpoint", {"last_object": "part-00042"})
    worker_put(etl_run["submit"], "unrelated", 1)
    worker_put(reports["task"], "checkpoint-of-reports", 2)
    browser_login(make_user("olga", "viewer"))

    page.get_by_role("link", name="Search keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Search keys")
    page.get_by_label("Key contains").fill("CHECKPOINT")  # a part of the name, in another case
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("row").filter(has=page.get_by_role("cell"))
    expect(results).to_have_count(2)
    expect(page.get_by_role("link", name="checkpoint-of-reports", exact=True)).to_be_visible()
    found = results.filter(has=page.get_by_role("link", name="spark/checkpoint", exact=True))
    expect(found.get_by_role("cell")).to_have_text([DAG, RUN, "copy", "1", "spark/checkpoint",
                                                     '{"last_object":"part-00042"}', re.compile("UTC.*ago"), "never"])

    # A DAG narrows the search down; the text stays.
    expect(page.get_by_label("Key contains")).to_have_value("CHECKPOINT")
    page.get_by_label("DAG", exact=True).fill(DAG)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("1 key found in DAG")).to_be_visible()
    expect(results).to_have_count(1)
    expect(page.get_by_role("link", name="checkpoint-of-reports", exact=True)).to_have_count(0)

    # The key links to its task instance, which shows the key.
    found.get_by_role("link", name="spark/checkpoint", exact=True).click()
    expect(page).to_have_url(url_pattern(ti_page_url(DAG, RUN, "copy", map_index=1)))
    expect(page.get_by_role("heading", level=1)).to_have_text("copy map index 1")
    expect(key_row(page, "spark/checkpoint")).to_contain_text('"last_object": "part-00042"')


@pytest.mark.parametrize("width", [1280, 390])
def test_search_as_you_type_keeps_the_page_and_the_address_follows(page, make_user, browser_login, etl_run,
                                                                    worker_put, width):
    page.set_viewport_size({"width": width, "height": 844})
    worker_put(etl_run["submit"], "spark/checkpoint", 1)
    worker_put(etl_run["submit"], "unrelated", 2)
    browser_login(make_user("olga", "viewer"))
    page.goto("/search")
    mark_document(page)
    page.get_by_label("Key contains").press_sequentially("spark", delay=30)  # no Search button pressed
    expect(page.get_by_role("link", name="spark/checkpoint", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/search\?q=spark"))
    page.get_by_label("DAG", exact=True).press_sequentially("et", delay=30)
    expect(page.get_by_text("No DAG is named et.")).to_be_visible()
    expect(page.get_by_role("link", name=DAG, exact=True).first).to_be_visible()
    assert_same_document(page)


# --- live updates -------------------------------------------------------------------------


def test_a_workers_writes_appear_without_reloading(page, make_user, browser_login, etl_run, set_ti_state, worker_put):
    ti = etl_run["submit"]
    set_ti_state(DAG, RUN, "submit", "running")
    browser_login(make_user("olga", "viewer"))
    page.goto(ti_page_url(DAG, RUN, "submit"))
    expect(page.get_by_text("Refreshes every 3 seconds while the task runs.")).to_be_visible()
    expect(key_rows(page)).to_have_text(["No live keys."])
    mark_document(page)

    worker_put(ti, "spark/job_id", "application_1700000000000_0001")
    expect(key_row(page, "spark/job_id")).to_contain_text("application_1700000000000_0001", timeout=10_000)

    # The table keeps refreshing: an overwrite shows too.
    worker_put(ti, "spark/job_id", "application_1700000000000_0002")
    expect(key_row(page, "spark/job_id")).to_contain_text("application_1700000000000_0002", timeout=10_000)
    assert_same_document(page)


# --- roles --------------------------------------------------------------------------------


def test_a_viewer_sees_no_editing_controls(page, make_user, browser_login, etl_run, worker_put):
    worker_put(etl_run["submit"], "cursor", 42)
    make_user("vera", "viewer")
    browser_login(make_user("eddie", "editor"))
    page.goto(ti_page_url(DAG, RUN, "submit"))
    # An editor has them (so the viewer's absence below is not vacuous) ...
    expect(page.get_by_role("button", name="Add key")).to_be_visible()
    expect(key_row(page, "cursor").get_by_role("button", name="Edit")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    browser_login("vera")
    page.goto(ti_page_url(DAG, RUN, "submit"))
    expect(key_row(page, "cursor")).to_contain_text("42")
    # ... a viewer has none of them, and no form fields to change keys with.
    for name in ("Add key", "Edit", "Save", "Delete", "Clear all keys"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    for label in ("Key", "Value", "Expires at"):
        expect(page.get_by_label(label, exact=True)).to_have_count(0)


# --- editing (editor role) ----------------------------------------------------------------


def choose_expiration(scope, choice: str, expires_at: str | None = None) -> None:
    """Expiration = Default / Never / a quick choice / Custom (+ Expires at, 24-hour UTC)."""
    scope.get_by_label("Expiration", exact=True).select_option(label=choice)
    if expires_at is not None:
        scope.get_by_label("Expires at", exact=True).fill(expires_at)


def confirm_delete(page, key: str) -> None:
    """Delete opens a confirmation in the key's row; its own button repeats the action."""
    key_row(page, key).get_by_role("button", name=f"Delete {key}", exact=True).click()
    confirmation = key_rows(page).filter(has_text=f"Delete key {key}?")
    expect(confirmation).to_be_visible()
    confirmation.get_by_role("button", name="Delete", exact=True).click()
    # The key's row is already gone while the confirmation stands in for it: wait for the answer.
    expect(confirmation).to_have_count(0)


def test_add_a_key(page, editor_on, etl_run, stored):
    editor_on()
    expect(key_rows(page)).to_have_text(["No live keys."])
    page.get_by_label("Key", exact=True).fill("spark/job_id")
    page.get_by_label("Value", exact=True).fill('{"job": "application_42", "attempt": 1}')
    choose_expiration(page, "Never")
    page.get_by_role("button", name="Add key").click()

    row = key_row(page, "spark/job_id")
    expect(row).to_contain_text('"job": "application_42"')
    expect(row.get_by_role("cell").nth(3)).to_have_text("never")
    assert stored("submit", "spark/job_id") == ('{"job":"application_42","attempt":1}', None)


@pytest.mark.parametrize("width", [1280, 390])
def test_typing_a_time_chooses_custom_and_the_key_expires_then(page, editor_on, etl_run, width):
    page.set_viewport_size({"width": width, "height": 844})
    editor_on()
    page.get_by_label("Key", exact=True).fill("job")
    page.get_by_label("Value", exact=True).fill("1")
    expect(page.get_by_label("Expiration", exact=True)).to_have_value("default")
    page.get_by_label("Expires at", exact=True).fill("2099-05-05 10:11:12")
    expect(page.get_by_label("Expiration", exact=True)).to_have_value("custom")
    page.get_by_role("button", name="Add key").click()
    expect(key_row(page, "job").get_by_role("cell").nth(3)).to_contain_text("2099-05-05 10:11:12 UTC")


def test_edit_a_key_in_place_and_change_its_expiry(page, editor_on, etl_run, worker_put, stored):
    # An expiry to start from, so "never" can only appear once the change is saved.
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100}, expires_at="2030-01-01T00:00:00Z")
    worker_put(etl_run["submit"], "other", "untouched")
    editor_on()
    expect(key_row(page, "checkpoint").get_by_role("cell").nth(3)).to_contain_text("2030-01-01 00:00:00 UTC")
    mark_document(page)

    row = key_row(page, "checkpoint")
    edit_button = row.get_by_role("button", name="Edit checkpoint", exact=True)

    # Cancel: the form goes, the row comes back unchanged, and the keyboard is back on Edit.
    edit_button.click()
    value = editing_row(page).get_by_label("Value", exact=True)
    expect(value).to_be_focused()  # opening the form moves the keyboard into it
    value.fill('{"offset": "not saved"}')
    editing_row(page).get_by_role("link", name="Cancel", exact=True).click()
    expect(editing_row(page)).to_have_count(0)
    expect(row).to_contain_text('"offset": 100')
    expect(edit_button).to_be_focused()
    assert stored("submit", "checkpoint")[0] == '{"offset":100}'

    # The value: Edit opens the form in the row, Save swaps the row back (no page load).
    edit_button.click()
    expect(value).to_be_focused()
    expect(value).to_have_value(re.compile(r'"offset": 100'))
    value.fill('{"offset": 250}')
    editing_row(page).get_by_role("button", name="Save").click()
    expect(row).to_contain_text('"offset": 250')
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(edit_button).to_be_focused()  # after Save the keyboard is back on the row's Edit button
    assert stored("submit", "checkpoint")[0] == '{"offset":250}'
    expect(row.get_by_role("cell").nth(3)).to_contain_text("2030-01-01 00:00:00 UTC")  # the expiry is kept
    assert_same_document(page)

    # The expiry to Never. (htmx focuses the Value field once the form has settled: wait for it,
    # or that focus could land mid-way through filling another field.)
    row.get_by_role("button", name="Edit").click()
    expect(editing_row(page).get_by_label("Value", exact=True)).to_be_focused()
    choose_expiration(editing_row(page), "Never")
    editing_row(page).get_by_role("button", name="Save").click()
    expect(row.get_by_role("cell").nth(3)).to_have_text("never")
    assert stored("submit", "checkpoint") == ('{"offset":250}', None)

    # The expiry to a custom time, typed in 24-hour UTC (seconds may be left out).
    row.get_by_role("button", name="Edit").click()
    expect(editing_row(page).get_by_label("Value", exact=True)).to_be_focused()
    choose_expiration(editing_row(page), "Custom (Expires at)", "2031-05-06 07:08")
    editing_row(page).get_by_role("button", name="Save").click()
    expect(row.get_by_role("cell").nth(3)).to_contain_text("2031-05-06 07:08:00 UTC")
    assert stored("submit", "checkpoint")[1].replace(tzinfo=None).isoformat() == "2031-05-06T07:08:00"
    assert_same_document(page)
    expect(key_row(page, "other")).to_contain_text('"untouched"')


def test_extend_a_keys_expiry_by_a_day_in_place(page, editor_on, etl_run, worker_put, stored):
    worker_put(etl_run["submit"], "lease", "held", expires_at="2030-01-01T06:00:00Z")
    worker_put(etl_run["submit"], "other", "untouched", expires_at="2030-01-01T06:00:00Z")
    editor_on()
    row = key_row(page, "lease")
    expect(row.get_by_role("cell").nth(3)).to_contain_text("2030-01-01 06:00:00 UTC")
    mark_document(page)

    row.get_by_role("button", name="Extend lease by 1 day", exact=True).click()
    expect(row.get_by_role("status")).to_have_text("Extended by 1 day.")
    expect(row.get_by_role("cell").nth(3)).to_contain_text("2030-01-02 06:00:00 UTC")
    assert_same_document(page)  # htmx swapped the row; the page was not reloaded
    assert stored("submit", "lease")[1].replace(tzinfo=None).isoformat() == "2030-01-02T06:00:00"
    expect(key_row(page, "other").get_by_role("cell").nth(3)).to_contain_text("2030-01-01 06:00:00 UTC")


def test_a_bad_value_is_refused_beside_the_field(page, editor_on, etl_run, worker_put, stored):
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100})
    editor_on()
    key_row(page, "checkpoint").get_by_role("button", name="Edit").click()
    editing_row(page).get_by_label("Value", exact=True).fill("{not json")
    editing_row(page).get_by_role("button", name="Save").click()
    # The form stays, the field marked invalid, with the error beside it.
    value = editing_row(page).get_by_label("Value", exact=True)
    expect(value).to_have_attribute("aria-invalid", "true")
    expect(value).to_have_accessible_description(re.compile("JSON"))
    assert stored("submit", "checkpoint")[0] == '{"offset":100}'


def test_a_save_over_a_workers_newer_write_is_refused(page, editor_on, etl_run, worker_put, stored):
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100})
    editor_on()
    key_row(page, "checkpoint").get_by_role("button", name="Edit").click()
    expect(editing_row(page).get_by_label("Value", exact=True)).to_be_visible()
    worker_put(etl_run["submit"], "checkpoint", {"offset": 999})  # the worker writes meanwhile
    editing_row(page).get_by_label("Value", exact=True).fill('{"offset": 250}')
    editing_row(page).get_by_role("button", name="Save").click()
    # Refused, with the worker's value shown; nothing overwritten.
    expect(editing_row(page).get_by_role("alert")).to_contain_text('"offset": 999')
    assert stored("submit", "checkpoint")[0] == '{"offset":999}'


def test_delete_a_key_after_confirming(page, editor_on, etl_run, worker_put, stored):
    worker_put(etl_run["submit"], "checkpoint", {"offset": 100})
    worker_put(etl_run["submit"], "other", "stays")
    editor_on()
    confirm_delete(page, "checkpoint")
    expect(key_row(page, "checkpoint")).to_have_count(0)
    expect(key_row(page, "other")).to_contain_text('"stays"')
    assert stored("submit", "checkpoint") is None


def test_clear_all_keys_after_confirming(page, editor_on, etl_run, worker_put, stored):
    for key in ("a", "b", "c"):
        worker_put(etl_run["submit"], key, key)
    editor_on()
    expect(key_rows(page)).to_have_count(3)
    page.get_by_role("button", name="Clear all keys", exact=True).click()
    # The confirmation warns that a task resuming from these keys starts over; Clear repeats the action.
    expect(page.get_by_role("alert")).to_contain_text("start over")
    page.get_by_role("button", name="Clear", exact=True).click()
    expect(key_rows(page)).to_have_text(["No live keys."])
    assert [stored("submit", key) for key in ("a", "b", "c")] == [None, None, None]


# --- live updates while a key is being edited ---------------------------------------------


def test_a_poll_never_wipes_an_open_edit_form(page, editor_on, etl_run, set_ti_state, worker_put, stored):
    ti = etl_run["submit"]
    set_ti_state(DAG, RUN, "submit", "running")
    worker_put(ti, "checkpoint", {"offset": 100})
    editor_on()
    expect(page.get_by_text(f"Refreshes every {POLL_SECONDS} seconds while the task runs.")).to_be_visible()
    row = key_row(page, "checkpoint")
    row.get_by_role("button", name="Edit checkpoint", exact=True).click()
    value = editing_row(page).get_by_label("Value", exact=True)
    expect(value).to_be_focused()
    value.fill('{"offset": 250, "note": "typed while the table polls"}')

    worker_put(ti, "written-meanwhile", "by the worker")  # another key: a poll would bring a new table
    page.wait_for_timeout((2 * POLL_SECONDS + 1) * 1000)  # more than two poll intervals
    expect(editing_row(page)).to_have_count(1)  # the form is still open ...
    expect(value).to_have_value('{"offset": 250, "note": "typed while the table polls"}')  # ... with the text
    expect(value).to_be_focused()

    # Once the form is closed the polling goes on: the worker's key shows up.
    editing_row(page).get_by_role("link", name="Cancel", exact=True).click()
    expect(key_row(page, "written-meanwhile")).to_contain_text('"by the worker"', timeout=(2 * POLL_SECONDS + 4) * 1000)
    expect(row).to_contain_text('"offset": 100')
    assert stored("submit", "checkpoint")[0] == '{"offset":100}'  # nothing typed was saved


def test_copy_buttons_put_the_key_and_the_value_on_the_clipboard(browser, live_server, make_user, etl_run,
                                                                  worker_put):
    from support import PASSWORD

    worker_put(etl_run["submit"], "spark/job_id", {"job": "application_42"})
    make_user("olga", "viewer")
    context = browser.new_context(base_url=live_server, permissions=["clipboard-read", "clipboard-write"])
    try:
        tab = context.new_page()
        tab.goto("/login")
        tab.get_by_label("Username").fill("olga")
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        tab.goto(ti_page_url(DAG, RUN, "submit"))
        tab.get_by_role("button", name="Copy key spark/job_id", exact=True).click()
        assert tab.evaluate("navigator.clipboard.readText()") == "spark/job_id"
        tab.get_by_role("button", name="Copy value of spark/job_id", exact=True).click()
        expect(tab.get_by_role("button", name="Copy value of spark/job_id", exact=True)).to_have_class(
            re.compile("copied"))
        assert tab.evaluate("navigator.clipboard.readText()") == '{\n  "job": "application_42"\n}'
    finally:
        context.close()
