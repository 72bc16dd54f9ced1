"""Every page at a phone's width (390 pixels) and a laptop's (1280): nothing makes the page wider
than the screen (a wide table scrolls inside its own box), and on a task instance's page a long
value leaves the row's buttons on screen."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from support import ti_page_url

DAG = "warehouse_nightly_rebuild_of_every_customer_facing_table"
RUN = "scheduled__2026-12-01T00:00:00+00:00"
NAME, URI = "warehouse.orders_with_a_long_asset_name", "postgres://warehouse.internal:5432/analytics/public/orders"
LONG_KEY = "checkpoint/" + "partition=2026-12-01/" * 6
# A value no line break can split (one long token) beside an ordinary one.
LONG_VALUE = {"rows_written": 1_204_332, "token": "x" * 2_000, "files": [f"s3://bucket/part-{i:05d}.parquet"
                                                                        for i in range(40)]}
WIDTHS = [390, 1280]


@pytest.fixture
def world(app, make_run, make_user, worker_put, worker_auth, live_server):
    import httpx

    from webapp import assets
    from webapp.extensions import db

    tis = make_run(dag_id=DAG, run_id=RUN, tasks=(("load_orders_into_the_warehouse", None), ("copy", [0, 1])))
    ti = tis["load_orders_into_the_warehouse"]
    worker_put(ti, LONG_KEY, LONG_VALUE, "2099-01-01T00:00:00+00:00")
    worker_put(ti, "short", 1)
    with app.app_context():
        asset = assets.create(NAME, URI, "warehouse")
        db.session.commit()
        asset_id = asset.id
    with httpx.Client(base_url=live_server, timeout=10) as http:
        response = http.put("/execution/store/asset/by-name/value", params={"name": NAME, "key": LONG_KEY},
                            json={"value": LONG_VALUE}, headers=worker_auth(ti))
        assert response.status_code == 204, response.text
    make_user("ada", "admin")
    run = f"/dags/{quote(DAG, safe='')}/runs/{quote(RUN, safe='')}"
    return {
        "ti": ti_page_url(DAG, RUN, "load_orders_into_the_warehouse"),
        "pages": ["/", f"/dags/{quote(DAG, safe='')}", run, ti_page_url(DAG, RUN, "load_orders_into_the_warehouse"),
                  ti_page_url(DAG, RUN, "copy", map_index=1), "/search?q=checkpoint", "/assets",
                  f"/assets/{asset_id}", "/access", "/account", "/api/v2/docs"],
    }


def page_overflow(page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def sticking_out(page) -> list[str]:
    """The outermost elements reaching past the window's right edge, to say what to fix."""
    return page.evaluate("""() => {
        const found = [];
        for (const el of document.body.querySelectorAll('*')) {
            const box = el.getBoundingClientRect();
            if (box.right > window.innerWidth + 1 && !found.some(outer => outer.contains(el))) found.push(el);
        }
        return found.slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                                            + ' ' + Math.round(el.getBoundingClientRect().right));
    }""")


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_is_wider_than_the_screen(browser, live_server, world, width):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.goto("/login")
        assert page_overflow(page) <= 0, "login"
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(__import__("support").PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        too_wide = {}
        for path in world["pages"]:
            page.goto(path)
            if (overflow := page_overflow(page)) > 0:
                too_wide[path] = (overflow, sticking_out(page))
        assert too_wide == {}, f"pages wider than {width} px (by how many pixels): {too_wide}"
    finally:
        context.close()


def test_a_long_value_leaves_the_rows_buttons_on_screen_at_1280(browser, live_server, world):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(__import__("support").PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(world["ti"])
        for name in (f"Edit {LONG_KEY}", f"Delete {LONG_KEY}", f"Extend {LONG_KEY} by 7 days"):
            box = page.get_by_role("button", name=name, exact=True).bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1280, (name, box)
        assert page_overflow(page) <= 0
    finally:
        context.close()


def test_dark_mode_follows_the_system_setting(browser, live_server):
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(base_url=live_server, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto("/login")
            colours[scheme] = page.evaluate("""() => {
                const style = getComputedStyle(document.documentElement);
                const input = getComputedStyle(document.querySelector('input[name=username]'));
                return [style.backgroundColor, style.color, input.backgroundColor];
            }""")
        finally:
            context.close()

    def brightness(rgb: str) -> float:
        red, green, blue = (int(part) for part in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
        return (red * 299 + green * 587 + blue * 114) / 1000

    light_page, light_text, _ = colours["light"]
    dark_page, dark_text, dark_input = colours["dark"]
    assert brightness(light_page) > 200 and brightness(light_text) < 80
    assert brightness(dark_page) < 40 and brightness(dark_text) > 200 and brightness(dark_input) < 40
