"""Take the README's screenshots of the admin UI (PNG files under docs/screenshots/).

    python scripts/screenshots.py [--out docs/screenshots]

Starts ``taskstore serve --demo`` on a free port with a temporary instance folder (so a
fresh SQLite database with the demo data, never your own), logs in as the demo admin with
Debian's Chromium through Playwright (``apt-get install chromium``, ``pip install playwright``;
no Playwright browser download), walks the pages by their links and saves one PNG per page.
Pages that do not exist (search, the editing form, the clear confirmation) are skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--force-color-profile=srgb",
    "--hide-scrollbars",
]
VIEWPORT = {"width": 1280, "height": 800}
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


def shoot(page: Page, out: Path, name: str, *, full_page: bool = True) -> None:
    """Save the page; ``full_page`` takes all of it, cut below the content (no empty screen)."""
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    clip = None
    if full_page:
        bottom = page.evaluate(
            "Math.ceil(document.querySelector('main').getBoundingClientRect().bottom + window.scrollY)")
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": max(bottom + 24, 360)}
    page.screenshot(path=str(path), full_page=full_page, clip=clip, animations="disabled")
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def take(page: Page, base_url: str, password: str, out: Path) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill("admin")
    shoot(page, out, "login", full_page=False)

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("DAGs")
    shoot(page, out, "dags")

    page.get_by_role("link", name=MAPPED_DAG, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(MAPPED_DAG)
    shoot(page, out, "dag-runs")

    # The newest run (the first row) is the one still running.
    page.locator("table tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("button", name=MAPPED_TASK, exact=True)).to_be_visible()  # the mapped group's toggle
    shoot(page, out, "dag-run")

    page.get_by_role("link", name=f"{MAPPED_TASK} map index {MAP_INDEX}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(MAPPED_TASK)
    shoot(page, out, "task-instance-mapped")

    # A task instance with a training checkpoint, expired keys shown (greyed, with a badge).
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="DAGs").click()
    page.get_by_role("link", name=CHECKPOINT_DAG, exact=True).click()
    page.locator("table tbody tr").first.get_by_role("link").click()
    page.get_by_role("link", name=CHECKPOINT_TASK, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(CHECKPOINT_TASK)
    page.get_by_role("link", name="Show expired keys").click()
    expect(page.get_by_role("link", name="Hide expired keys")).to_be_visible()

    # Edit a key in place (the form replaces its row), save a new value: the history shows it.
    edit = page.get_by_role("row").filter(has_text="metrics").get_by_role("button", name="Edit")
    if edit.count():
        edit.click()
        form_row = page.get_by_role("row").filter(has=page.get_by_role("button", name="Save"))
        expect(form_row).to_be_visible()
        shoot(page, out, "edit-key")
        form_row.get_by_label("Value", exact=True).fill('{"loss": 0.0412, "accuracy": 0.9871}')
        form_row.get_by_role("button", name="Save").click()
        expect(page.get_by_role("button", name="Save")).to_have_count(0)
        page.reload()
    else:
        print("skipped edit-key: this UI has no Edit button yet")
    expect(page.get_by_role("link", name="Hide expired keys")).to_be_visible()
    shoot(page, out, "task-instance-keys")

    page.get_by_role("button", name="Clear all keys", exact=True).click()  # opens the confirmation only
    expect(page.get_by_role("button", name="Clear", exact=True)).to_be_visible()
    shoot(page, out, "clear-confirm")

    page.get_by_role("link", name="Search keys").click()
    page.get_by_role("searchbox").fill("checkpoint")
    page.get_by_label("DAG", exact=True).fill(CHECKPOINT_DAG)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="checkpoint/uri").first).to_be_visible()
    shoot(page, out, "search")


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
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light",
                                              timezone_id="UTC", locale="en-GB")
                page = context.new_page()
                page.set_default_timeout(15_000)
                take(page, f"http://127.0.0.1:{port}", password, out)
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
