"""Browser fixtures: Playwright (sync API) driving Debian's Chromium against ``live_server``.

Playwright comes from PyPI, the browser from Debian (``apt-get install chromium``); Playwright's
own browser downloads are never used. Without /usr/bin/chromium these tests skip.

Test data goes straight into the shared test database through the ``app`` fixture (an app
context in this process); the server process reads the same database. ``app`` empties every
table after each test, so each test logs in with users it created itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp import runs
from webapp.auth import users
from webapp.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PASSWORD = "correct horse battery"
# Playwright's expect() retries until this many milliseconds have passed; the only waits here.
EXPECT_TIMEOUT_MS = 10_000


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")
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
def password() -> str:
    """Every user made by ``make_user`` has this password."""
    return PASSWORD


@pytest.fixture
def make_user(app):
    def _make(username: str, role: str) -> str:
        with app.app_context():
            users.create(username, PASSWORD, role)
            db.session.commit()
        return username

    return _make


@pytest.fixture
def set_ti_state(app):
    def _set(dag_id: str, run_id: str, task_id: str, state: str | None, map_index: int = -1) -> None:
        with app.app_context():
            runs.set_state(runs.get_task_instance(dag_id, run_id, task_id, map_index), state, clear_on_success=False)
            db.session.commit()

    return _set


@pytest.fixture
def log_in(page):
    """Log in through the login form, as a person would; lands on the DAGs page."""

    def _log_in(username: str, password: str = PASSWORD) -> None:
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)

    return _log_in
