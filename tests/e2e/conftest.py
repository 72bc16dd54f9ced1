"""Browser fixtures: Playwright (sync API) driving Debian's Chromium against ``live_server``.

Playwright comes from PyPI, the browser from Debian (``apt-get install chromium``); Playwright's
own browser downloads are never used. Without /usr/bin/chromium these tests skip. Every test
here is marked ``slow`` (tests/conftest.py), so ``pytest -m "not slow"`` leaves them out.

Test data goes straight into the shared test database through the ``app`` fixture (an app
context in this process: ``make_run``, ``make_user``, ``set_ti_state`` of tests/conftest.py);
the server process reads the same database. ``app`` empties every table after each test, so
each test logs in with users it created itself. Keys are written by ``worker_put``, which here
goes through the worker API of the server process, as a worker's writes do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from support import PASSWORD, put_key, ti_page_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# Playwright's expect() retries until this many milliseconds have passed; the only waits here.
EXPECT_TIMEOUT_MS = 10_000


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# Package scope, not session: the sync API keeps an event loop running in this thread while the
# browser is open, and tests after this package call asyncio.run().
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="browser tests need playwright (pip install playwright)")
    sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server, app):
    """A fresh browser context (no cookies) per test. Depends on ``app`` so the browser is
    gone before ``app`` empties the tables."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def browser_login(page):
    """Log in through the login form, as a person would; lands on the DAGs page. Users come
    from ``make_user`` (tests/conftest.py), all with ``support.PASSWORD``. Logs in ``page``, or
    the ``tab`` given (one of ``open_tab``'s)."""

    def _log_in(username: str, password: str = PASSWORD, tab=None) -> None:
        tab = tab or page
        tab.goto("/login")
        tab.get_by_label("Username").fill(username)
        tab.get_by_label("Password").fill(password)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(lambda url: "/login" not in url)

    return _log_in


@pytest.fixture
def open_tab(browser, live_server, app):
    """A tab in a context of its own, for a test needing another window size or setting than
    ``page``'s: ``open_tab(390, 844, color_scheme="dark")`` (options after the size go to
    Playwright's ``new_context``); ``browser_login(user, tab=tab)`` logs it in. Every context
    opened is closed after the test, before ``app`` empties the tables."""
    contexts = []

    def _open(width: int = 1280, height: int = 800, **options):
        context = browser.new_context(base_url=live_server, viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def worker_put(live_server, worker_auth):
    """Overrides tests/conftest.py's ``worker_put``: the write goes through the worker API of
    the server process, with a worker token, as a running task's writes do."""
    with httpx.Client(base_url=live_server, timeout=10) as http:

        def _put(ti: str, key: str, value, expires_at: str | None = None) -> None:
            put_key(http, worker_auth(ti), ti, key, value, expires_at)

        yield _put


# --- every page of the admin UI, with data that stretches it -----------------------------------

DAG = "warehouse_nightly_rebuild_of_every_customer_facing_table"
RUN = "scheduled__2026-12-01T00:00:00+00:00"
TASK = "load_orders_into_the_warehouse"
ASSET_NAME = "warehouse.orders_with_a_long_asset_name"
ASSET_URI = "postgres://warehouse.internal:5432/analytics/public/orders"
LONG_KEY = "checkpoint/" + "partition=2026-12-01/" * 6
# A value no line break can split (one long token) beside an ordinary one.
LONG_VALUE = {"rows_written": 1_204_332, "token": "x" * 2_000, "files": [f"s3://bucket/part-{i:05d}.parquet"
                                                                        for i in range(40)]}


@pytest.fixture
def every_page(app, make_run, make_user, worker_put, worker_auth, live_server) -> dict:
    """A run with long names, keys (one long key with a long value) on a task instance and on a
    mapped one, an asset with that key, and the admin ``ada``. Returns ``pages``: the path of
    every page an admin sees once logged in (the login page aside), ``ti``: the task instance's
    page, ``long_key`` and ``admin``. The checks that hold on every page (widths, accessibility)
    all go through this one list."""
    from webapp import assets
    from webapp.extensions import db

    tis = make_run(dag_id=DAG, run_id=RUN, tasks=((TASK, None), ("copy", [0, 1])))
    worker_put(tis[TASK], LONG_KEY, LONG_VALUE, "2099-01-01T00:00:00+00:00")
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    worker_put(tis[TASK], "short", 1, soon)  # on the "Expiring soon" page, with its Extend buttons
    worker_put(tis[("copy", 1)], "copied", {"files": 3})
    with app.app_context():
        asset = assets.create(ASSET_NAME, ASSET_URI, "warehouse")
        db.session.commit()
        asset_id = asset.id
    with httpx.Client(base_url=live_server, timeout=10) as http:
        response = http.put("/execution/store/asset/by-name/value", params={"name": ASSET_NAME, "key": LONG_KEY},
                            json={"value": LONG_VALUE}, headers=worker_auth(tis[TASK]))
        assert response.status_code == 204, response.text
    make_user("ada", "admin")
    dag = f"/dags/{quote(DAG, safe='')}"
    run = f"{dag}/runs/{quote(RUN, safe='')}"
    ti = ti_page_url(DAG, RUN, TASK)
    return {
        "ti": ti, "long_key": LONG_KEY, "admin": "ada",
        "pages": ["/", "/?q=nightly", dag, run, f"{run}/delete", ti, ti_page_url(DAG, RUN, "copy", map_index=1),
                  *(ti_page_url(DAG, RUN, TASK, action, key=LONG_KEY) for action in ("edit", "delete")),
                  ti_page_url(DAG, RUN, TASK, "clear"), ti_page_url(DAG, RUN, TASK, sort="-updated", history_key="x"),
                  "/search?q=checkpoint", "/search?q=files&in_values=1", "/expiring?within=7d", "/assets",
                  f"/assets/{asset_id}", "/access", "/account", "/api/v2/docs"],
    }


# A run with a plain task and a mapped one, and an editor on its page: what the browser tests
# of key pages start from.
ETL_DAG, ETL_RUN = "etl", "manual_1"


@pytest.fixture
def etl_run(make_run):
    """A run with a plain task and a mapped one: {task_id or (task_id, map_index): ti_id}."""
    return make_run(dag_id=ETL_DAG, run_id=ETL_RUN, tasks=(("submit", None), ("copy", [0, 1, 2])))


@pytest.fixture
def stored(app):
    """What the database holds for one key of a task instance: (value JSON, expires_at) or None."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import TaskState

    def _stored(task_id: str, key: str):
        with app.app_context():
            row = db.session.execute(
                select(TaskState.value, TaskState.expires_at)
                .where(TaskState.dag_id == ETL_DAG, TaskState.run_id == ETL_RUN, TaskState.task_id == task_id,
                       TaskState.map_index == -1, TaskState.key == key)
            ).first()
            return None if row is None else (row.value, row.expires_at)

    return _stored


@pytest.fixture
def editor_on(page, make_user, browser_login):
    """Log in as an editor and open a task instance's page."""

    def _open(task_id: str = "submit") -> None:
        browser_login(make_user("eddie", "editor"))
        page.goto(ti_page_url(ETL_DAG, ETL_RUN, task_id))
        from playwright.sync_api import expect  # noqa: PLC0415  (browser tests skip without playwright)

        expect(page.get_by_role("heading", level=1)).to_have_text(task_id)

    return _open
