"""Every page at a phone's width (390 pixels) and a laptop's (1280): nothing makes the page wider
than the screen (a wide table scrolls inside its own box), and on a task instance's page a long
value leaves the row's buttons on screen."""

from __future__ import annotations

import pytest

WIDTHS = [390, 1280]


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
def test_no_page_is_wider_than_the_screen(open_tab, browser_login, every_page, width):
    page = open_tab(width, 800)
    page.goto("/login")
    assert page_overflow(page) <= 0, "login"
    browser_login(every_page["admin"], tab=page)
    too_wide = {}
    for path in every_page["pages"]:
        page.goto(path)
        if (overflow := page_overflow(page)) > 0:
            too_wide[path] = (overflow, sticking_out(page))
    assert too_wide == {}, f"pages wider than {width} px (by how many pixels): {too_wide}"


def test_a_long_value_leaves_the_rows_buttons_on_screen_at_1280(page, browser_login, every_page):
    browser_login(every_page["admin"])
    page.goto(every_page["ti"])
    long_key = every_page["long_key"]
    for name in (f"Edit {long_key}", f"Delete {long_key}", f"Extend {long_key} by 7 days"):
        box = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, (name, box)
    assert page_overflow(page) <= 0


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
