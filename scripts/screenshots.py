"""Take the README's screenshots of the admin UI (PNG files under docs/screenshots/).

    python scripts/screenshots.py [--out docs/screenshots]

Starts ``taskstore serve --demo`` on a free port with a temporary instance folder (so a
fresh SQLite database with the demo data, never your own), logs in as the demo admin with
Debian's Chromium through Playwright (``apt-get install chromium``, ``pip install playwright``;
no Playwright browser download), walks the pages by their links as a person would and saves
one PNG per shot: desktop width (1280 px) unless named otherwise, one page at a phone's width
(390 px) and one in dark mode. Tall pages are cut to the part the README talks about. A
locator that no longer matches the markup stops the script (a screenshot of the wrong state
is worse than none).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--force-color-profile=srgb",
    "--hide-scrollbars",
]
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# The demo's DAG with a mapped task, and the one with a training checkpoint.
MAPPED_DAG, MAPPED_TASK, MAP_INDEX = "s3_partition_backfill", "copy_partition", 2
CHECKPOINT_DAG, CHECKPOINT_TASK = "ml_training_pipeline", "train_model"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo_server(instance: Path, port: int, log: Path) -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TASKSTORE_")}
    env["TASKSTORE_INSTANCE_PATH"] = str(instance)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "webapp", "serve", "--demo", "--port", str(port), "--workers", "1"],
            env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the demo server did not start:\n" + log.read_text())
        time.sleep(0.2)


def settle(page: Page) -> None:
    """Wait until the page is still: no request pending and htmx done swapping and settling
    (a screenshot mid-swap would show a half-replaced row)."""
    page.wait_for_load_state("networkidle")
    # Polled from here: wait_for_function would evaluate a string in the page, which the CSP forbids.
    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    deadline = time.monotonic() + 10
    while page.locator(busy).count():
        if time.monotonic() > deadline:
            raise SystemExit(f"{page.url}: htmx did not settle")
        page.wait_for_timeout(100)


def shoot(page: Page, out: Path, name: str, *, top: Locator | None = None, bottom: Locator | None = None,
          margin: int = 16) -> None:
    """Save the page at the viewport's width, down to the end of its content (no empty screen
    below); ``top`` and ``bottom`` cut it to the part from one element's top (else the page's)
    to another's bottom, with ``margin`` pixels below (a small one when a table row follows)."""
    settle(page)
    path = out / f"{name}.png"
    if bottom:
        y_end = bottom.first.evaluate("e => Math.ceil(e.getBoundingClientRect().bottom + window.scrollY)")
    else:  # the last of main's children: main's own padding would leave a gap
        y_end = page.locator("main").evaluate(
            "e => Math.ceil(Math.max(...[...e.children].map(c => c.getBoundingClientRect().bottom)) + window.scrollY)")
    y_start = 0
    if top:
        y_start = max(top.first.evaluate("e => Math.floor(e.getBoundingClientRect().top + window.scrollY)") - 16, 0)
    clip = {"x": 0, "y": y_start, "width": page.viewport_size["width"], "height": max(y_end + margin - y_start, 200)}
    page.screenshot(path=str(path), full_page=True, clip=clip, animations="disabled", caret="hide")
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def key_rows(page: Page) -> Locator:
    return page.locator("#key-rows").get_by_role("row")


def key_row(page: Page, key: str) -> Locator:
    """The key table's row whose first cell starts with ``key`` (then maybe a notice like "Saved.").
    Slashes are escaped: Playwright's selector would end the regex there."""
    pattern = "^" + re.escape(key).replace("/", "\\/") + r"(\s|$)"
    return key_rows(page).filter(has=page.get_by_role("cell", name=re.compile(pattern)))


def open_tab(browser: Browser, viewport: dict = VIEWPORT, **options) -> Page:
    """A tab in a context of its own: UTC, one device pixel per CSS pixel, light unless told."""
    options = {"color_scheme": "light", **options}
    context = browser.new_context(viewport=viewport, device_scale_factor=1, timezone_id="UTC", locale="en-GB",
                                  **options)
    context.set_default_timeout(15_000)
    return context.new_page()


def take(page: Page, base_url: str, password: str, out: Path, new_tab: Callable[..., Page]) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill("admin")
    shoot(page, out, "login", margin=48)  # as much space below the form as above it

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("DAGs")
    expect(page.get_by_role("link", name=MAPPED_DAG, exact=True)).to_be_visible()
    shoot(page, out, "dags")

    page.get_by_role("link", name=MAPPED_DAG, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(MAPPED_DAG)
    shoot(page, out, "dag-runs")

    # The newest run (the first row) is the one still running.
    page.locator("table tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("button", name=MAPPED_TASK, exact=True)).to_be_visible()  # the mapped group's toggle
    expect(page.get_by_role("button", name="Delete run")).to_be_visible()
    shoot(page, out, "dag-run")

    page.get_by_role("link", name=f"{MAPPED_TASK} map index {MAP_INDEX}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(MAPPED_TASK)
    mapped_url = page.url
    # The keys and the tries; the forms below are the same as on the editor's shot.
    shoot(page, out, "task-instance-mapped", bottom=page.locator("section.tries"))

    # The same page on a phone, down to the end of its keys (about the first screen).
    phone = new_tab(width=PHONE["width"], height=PHONE["height"], is_mobile=True, has_touch=True)
    phone.goto(mapped_url)
    expect(phone.get_by_role("heading", level=1)).to_contain_text(MAPPED_TASK)
    shoot(phone, out, "task-instance-phone", bottom=phone.locator("table.keys"))
    phone.close()

    # A task instance with a training checkpoint, expired keys shown (greyed, with a badge).
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="DAGs").click()
    page.get_by_role("link", name=CHECKPOINT_DAG, exact=True).click()
    page.locator("table tbody tr").first.get_by_role("link").click()
    page.get_by_role("link", name=CHECKPOINT_TASK, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CHECKPOINT_TASK)
    page.get_by_role("link", name="Show expired keys").click()
    expect(page.get_by_role("link", name="Hide expired keys")).to_be_visible()
    keys_table = page.locator("table.keys")

    # Edit a key in place (the form replaces its row): line numbers, and the live check saying
    # where the JSON breaks. Then a valid value, saved: the history shows it.
    settle(page)  # htmx ready: a click before would open the edit form as a page of its own
    key_row(page, "metrics").get_by_role("button", name="Edit").click()
    form_row = key_rows(page).filter(has=page.get_by_role("button", name="Save", exact=True))
    value = form_row.get_by_label("Value", exact=True)
    value.fill('{\n  "loss": 0.0412,\n  "accuracy": 0.9871\n  "epoch": 28\n}')
    expect(form_row.get_by_text("Value is not valid JSON at line 4, column 3")).to_be_visible()
    shoot(page, out, "edit-key", top=page.locator("p.toolbar"), bottom=form_row, margin=2)
    value.fill('{\n  "loss": 0.0412,\n  "accuracy": 0.9871,\n  "epoch": 28\n}')
    expect(form_row.get_by_text("Valid JSON", exact=True)).to_be_visible()
    form_row.get_by_role("button", name="Save").click()
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    page.reload()
    expect(page.get_by_role("link", name="Hide expired keys")).to_be_visible()
    shoot(page, out, "task-instance-keys")
    keys_url = page.url

    # The same keys in dark mode (the system's setting), down to the tries.
    dark = new_tab(color_scheme="dark")
    dark.goto(keys_url)
    expect(dark.get_by_role("link", name="Hide expired keys")).to_be_visible()
    shoot(dark, out, "task-instance-dark", bottom=dark.locator("section.tries"))
    dark.close()

    # Delete (confirmed in the row): the row becomes a notice with Undo.
    key_row(page, "checkpoint/uri").get_by_role("button", name="Delete checkpoint/uri", exact=True).click()
    confirmation = key_rows(page).filter(has_text="Delete key checkpoint/uri?")
    confirmation.get_by_role("button", name="Delete", exact=True).click()
    notice = key_rows(page).filter(has_text="Deleted key checkpoint/uri.")
    expect(notice.get_by_role("button", name="Undo deleting checkpoint/uri")).to_be_visible()
    shoot(page, out, "delete-undo", bottom=keys_table)
    notice.get_by_role("button", name="Undo deleting checkpoint/uri").click()
    expect(key_row(page, "checkpoint/uri")).to_contain_text("Restored.")
    key_row(page, "sagemaker/training_job").get_by_role("button", name="Extend sagemaker/training_job by 1 day").click()
    expect(key_row(page, "sagemaker/training_job")).to_contain_text("Extended")

    # The history, filtered by key as one types (htmx swaps it; the address follows). A fresh
    # page: typing into the filter while the last action's answer still replaces it is lost.
    page.reload()
    settle(page)
    history = page.locator("#history")
    history.get_by_label("Key contains").fill("checkpoint")
    expect(page).to_have_url(re.compile(r"history_key=checkpoint"))
    expect(history.locator("tbody tr")).to_have_count(2)
    shoot(page, out, "history-filtered", top=history, bottom=history)

    page.get_by_role("button", name="Clear all keys", exact=True).click()  # opens the confirmation only
    expect(page.get_by_role("button", name="Clear", exact=True)).to_be_visible()
    shoot(page, out, "clear-confirm")

    # Keys about to expire across every task instance: the first rows are enough.
    page.get_by_role("link", name="Expiring soon").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Expiring soon")
    rows = page.locator("table.expiring tbody tr")
    expect(rows.first.get_by_role("button", name=re.compile("by 1 day"))).to_be_visible()
    shoot(page, out, "expiring", bottom=rows.nth(min(rows.count(), 6) - 1), margin=2)

    # Search in names and values: "epoch" is in one key's name and in another's value.
    page.get_by_role("link", name="Search keys").click()
    page.get_by_role("searchbox").fill("epoch")
    page.get_by_label("DAG", exact=True).fill(CHECKPOINT_DAG)
    page.get_by_label("Also search in values").check()
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("columnheader", name="Found in")).to_be_visible()
    expect(page.get_by_role("link", name="checkpoint/uri").first).to_be_visible()
    task_hits = page.locator("table").first.locator("tbody tr")
    shoot(page, out, "search", bottom=task_hits.nth(min(task_hits.count(), 6) - 1))

    # The API reference: one operation (a worker writing a key) with its example request and answer.
    page.goto(base_url + "/api/v2/docs")
    expect(page.get_by_role("heading", name="Contents")).to_be_visible()
    operation = page.locator("article.api-op").filter(
        has=page.get_by_role("heading", name="PUT /execution/store/ti/{ti_id}/{key}", exact=True))
    expect(operation).to_have_count(1)
    shoot(page, out, "api-docs", top=operation, bottom=operation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNG files")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Chromium at {CHROMIUM}: apt-get install chromium")

    with tempfile.TemporaryDirectory(prefix="taskstore-screenshots-") as temp:
        instance = Path(temp) / "instance"
        port = free_port()
        server = start_demo_server(instance, port, Path(temp) / "server.log")
        try:
            password = (instance / "demo-admin-password").read_text().strip()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = open_tab(browser)

                def new_tab(width: int = VIEWPORT["width"], height: int = VIEWPORT["height"], **options) -> Page:
                    """A tab of another size or colour scheme, logged in as ``page`` is (its cookies)."""
                    return open_tab(browser, {"width": width, "height": height},
                                    storage_state=page.context.storage_state(), **options)

                take(page, f"http://127.0.0.1:{port}", password, out, new_tab)
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
