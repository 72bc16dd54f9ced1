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

from pathlib import Path

import httpx
import pytest

from support import PASSWORD, put_key

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
    from ``make_user`` (tests/conftest.py), all with ``support.PASSWORD``."""

    def _log_in(username: str, password: str = PASSWORD) -> None:
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)

    return _log_in


@pytest.fixture
def worker_put(live_server, worker_auth):
    """Overrides tests/conftest.py's ``worker_put``: the write goes through the worker API of
    the server process, with a worker token, as a running task's writes do."""
    with httpx.Client(base_url=live_server, timeout=10) as http:

        def _put(ti: str, key: str, value, expires_at: str | None = None) -> None:
            put_key(http, worker_auth(ti), ti, key, value, expires_at)

        yield _put
