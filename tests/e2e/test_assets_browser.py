"""The asset pages in a real browser (Chromium through Playwright) against the real server
process: find an asset in the Assets list, edit a key in place, watch a worker's writes arrive
without reloading, clear every key after the warning; and the links between an asset and the
task instances that write its keys. Keys are written as workers write them: through the
worker API of the server process, with a task instance's token (``worker_auth``)."""

from __future__ import annotations

import re

import httpx
import pytest

from support import ti_page_url

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect

DAG, RUN = "etl", "manual_1"
# "/", "?", "#", spaces and non-ASCII: shown as they are, the page found by the asset's id.
NAME = "warehouse/orders? #1 été"
URI = "postgres://warehouse/public/orders"
POLL_SECONDS = 3  # an asset's key table refreshes this often


def url_pattern(path: str) -> re.Pattern:
    return re.compile(re.escape(path) + "$")


def mark_document(page) -> None:
    """Tag the current document; any full page load (navigation, reload, form post) loses it."""
    page.evaluate("window.__e2eSameDocument = true")


def assert_same_document(page) -> None:
    assert page.evaluate("window.__e2eSameDocument === true"), "the page was fully reloaded"


def key_rows(page):
    return page.locator("#key-rows").get_by_role("row")


def key_row(page, key: str):
    """The key table's row for one key, found by its first cell (the key, maybe a notice after it)."""
    pattern = "^" + re.escape(key).replace("/", "\\/") + r"(\s|$)"
    return key_rows(page).filter(has=page.get_by_role("cell", name=re.compile(pattern)))


def editing_row(page):
    return key_rows(page).filter(has=page.get_by_role("button", name="Save", exact=True))


@pytest.fixture
def load_ti(make_run) -> str:
    return make_run(dag_id=DAG, run_id=RUN, tasks=(("load", None),))["load"]


@pytest.fixture
def asset_id(app) -> int:
    from webapp import assets
    from webapp.extensions import db

    with app.app_context():
        asset = assets.create(NAME, URI, "warehouse")
        db.session.commit()
        return asset.id


@pytest.fixture
def asset_put(live_server, worker_auth):
    """``asset_put(ti, key, value)``: a task instance writes an asset's key through the server's
    worker API, as Airflow's Task SDK does (the asset named in the query string)."""
    with httpx.Client(base_url=live_server, timeout=10) as http:

        def _put(ti: str, key: str, value) -> None:
            response = http.put("/execution/store/asset/by-name/value", params={"name": NAME, "key": key},
                                json={"value": value}, headers=worker_auth(ti))
            assert response.status_code == 204, response.text

        yield _put


@pytest.fixture
def stored(app, asset_id):
    """The asset's keys in the database: {key: value JSON}."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import AssetState

    def _stored() -> dict[str, str]:
        with app.app_context():
            rows = db.session.execute(select(AssetState.key, AssetState.value)
                                      .where(AssetState.asset_id == asset_id)).all()
            return dict(rows)

    return _stored


def test_edit_an_asset_key_in_place_see_a_workers_writes_and_clear_them_all(
        page, make_user, browser_login, load_ti, asset_id, asset_put, stored):
    asset_put(load_ti, "watermark", "2026-12-01")
    browser_login(make_user("eddie", "editor"))

    # From the header's Assets link to the list, and from the list to the asset.
    page.get_by_role("link", name="Assets", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Assets")
    listed = page.get_by_role("row").filter(has=page.get_by_role("link", name=NAME, exact=True))
    expect(listed.get_by_role("cell")).to_have_text([NAME, URI, "warehouse", "1", re.compile("UTC"),
                                                     re.compile(r"^load\s*etl · manual_1$")])
    listed.get_by_role("link", name=NAME, exact=True).click()
    expect(page).to_have_url(url_pattern(f"/assets/{asset_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{NAME} asset")
    expect(page.get_by_text("Refreshes every 3 seconds.")).to_be_visible()
    expect(page.get_by_role("columnheader")).to_have_text(["Key ↑", "Value", "Updated", "Last written by", "Actions"])
    mark_document(page)

    # Edit in place: the value only (asset keys never expire), saved without a page load.
    row = key_row(page, "watermark")
    expect(row).to_contain_text("load")
    row.get_by_role("button", name="Edit watermark", exact=True).click()
    value = editing_row(page).get_by_label("Value", exact=True)
    expect(value).to_be_focused()
    expect(editing_row(page).get_by_label("Expiration")).to_have_count(0)
    expect(editing_row(page).get_by_label("Expires at")).to_have_count(0)
    value.fill('"2026-12-02"')
    editing_row(page).get_by_role("button", name="Save", exact=True).click()
    expect(row.get_by_role("status")).to_have_text("Saved.")
    expect(row).to_contain_text('"2026-12-02"')
    expect(row).to_contain_text("eddie")  # who last wrote it: now the person
    assert stored() == {"watermark": '"2026-12-02"'}

    # A worker's writes appear without reloading: a new key, and an overwrite.
    asset_put(load_ti, "rows_loaded", 1200)
    expect(key_row(page, "rows_loaded")).to_contain_text("1200", timeout=(2 * POLL_SECONDS + 4) * 1000)
    asset_put(load_ti, "watermark", "2026-12-03")
    expect(key_row(page, "watermark")).to_contain_text('"2026-12-03"', timeout=(2 * POLL_SECONDS + 4) * 1000)
    expect(key_row(page, "watermark")).to_contain_text("load")
    assert_same_document(page)

    # Clear all keys, after a warning that tasks using them as watermarks start over.
    page.get_by_role("button", name="Clear all keys", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("watermarks")
    expect(page.get_by_role("alert")).to_contain_text("start over")
    expect(page.get_by_role("alert")).to_contain_text(NAME)
    page.get_by_role("button", name="Clear", exact=True).click()
    expect(page).to_have_url(url_pattern(f"/assets/{asset_id}"))
    expect(page.get_by_role("status").filter(has_text="Cleared")).to_have_text("Cleared 2 keys of this asset.")
    expect(key_rows(page)).to_have_text(["This asset has no keys."])
    assert stored() == {}


def test_a_poll_never_wipes_an_open_edit_form_on_an_asset_page(page, make_user, browser_login, load_ti, asset_id,
                                                                asset_put, stored):
    asset_put(load_ti, "watermark", "2026-12-01")
    browser_login(make_user("eddie", "editor"))
    page.goto(f"/assets/{asset_id}")
    key_row(page, "watermark").get_by_role("button", name="Edit watermark", exact=True).click()
    value = editing_row(page).get_by_label("Value", exact=True)
    value.fill('"typed while the table polls"')
    asset_put(load_ti, "written-meanwhile", "by the worker")
    page.wait_for_timeout((2 * POLL_SECONDS + 1) * 1000)  # more than two poll intervals
    expect(editing_row(page)).to_have_count(1)
    expect(value).to_have_value('"typed while the table polls"')
    editing_row(page).get_by_role("link", name="Cancel", exact=True).click()
    expect(key_row(page, "written-meanwhile")).to_contain_text("by the worker",
                                                                timeout=(2 * POLL_SECONDS + 4) * 1000)
    assert stored()["watermark"] == '"2026-12-01"'


def test_filter_the_asset_list_and_follow_links_between_an_asset_and_its_writers(
        page, make_user, browser_login, load_ti, asset_id, asset_put, app):
    from webapp import assets
    from webapp.extensions import db

    with app.app_context():
        assets.create("reports.daily", "s3://reports/daily")
        db.session.commit()
    asset_put(load_ti, "watermark", "2026-12-01")
    browser_login(make_user("olga", "viewer"))
    page.goto("/assets")
    names = page.locator("table.assets td.name")
    expect(names).to_have_text(["reports.daily", NAME])
    mark_document(page)
    # The table follows the filter box as one types (htmx), and the URL keeps the filter.
    page.get_by_label("Name contains").fill("ORDERS")  # part of the name, in another case
    expect(names).to_have_text([NAME])
    expect(page).to_have_url(re.compile(r"/assets\?name=.*&uri="))
    assert_same_document(page)

    # A viewer sees the keys but no controls to change them.
    page.get_by_role("link", name=NAME, exact=True).click()
    expect(key_row(page, "watermark")).to_contain_text('"2026-12-01"')
    for name in ("Add key", "Edit", "Delete", "Clear all keys"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)

    # The writer links to its task instance, whose page lists the asset keys it wrote ...
    key_row(page, "watermark").get_by_role("link", name="load", exact=True).click()
    expect(page).to_have_url(url_pattern(ti_page_url(DAG, RUN, "load")))
    writes = page.get_by_role("region", name="Asset keys it wrote")
    expect(writes.get_by_role("row").filter(has=page.get_by_role("cell"))).to_have_count(1)
    # ... each linking back to its asset.
    writes.get_by_role("link", name=NAME, exact=True).click()
    expect(page).to_have_url(url_pattern(f"/assets/{asset_id}"))
