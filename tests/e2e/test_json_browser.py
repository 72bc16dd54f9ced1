"""The Value field in a real browser: line numbers beside the text, and the live check saying
where the JSON breaks while one types, before anything is submitted."""

from __future__ import annotations

import re

import pytest

from support import ti_page_url

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright").expect


def test_the_value_field_numbers_its_lines_and_says_where_the_json_breaks(page, make_run, make_user, browser_login,
                                                                          stored_rows):
    make_run()
    browser_login(make_user("edna", "editor"))
    page.goto(ti_page_url())
    page.evaluate("window.__e2eSameDocument = true")  # any reload or form post would lose it
    value = page.get_by_label("Value", exact=True)
    form = page.locator("form", has=value)
    gutter = form.locator(".line-numbers")

    value.press_sequentially('{\n"a": 1\n"b": 2\n}', delay=20)
    expect(form.get_by_text("Value is not valid JSON at line 3, column 1: Expecting ',' delimiter")).to_be_visible()
    expect(gutter).to_have_text(re.compile(r"^1\s+2\s+3\s+4\s*$"))  # one number per line, no more

    value.press("ArrowUp")
    value.press("ArrowUp")
    value.press("End")
    value.press_sequentially(",", delay=20)  # "a": 1, — now it is JSON
    expect(form.get_by_text("Valid JSON", exact=True)).to_be_visible()

    # A long value scrolls; its numbers scroll with it and count its lines.
    value.fill("[\n" + ",\n".join(str(number) for number in range(40)) + "\n]")
    value.evaluate("area => { area.scrollTop = area.scrollHeight; area.dispatchEvent(new Event('scroll')); }")
    expect(gutter).to_have_text(re.compile(r"^1\s+2\s.*\s42\s*$", re.S))
    assert value.evaluate("area => area.scrollTop") > 0
    assert gutter.evaluate("gutter => gutter.scrollTop") == value.evaluate("area => area.scrollTop")

    assert page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
    assert stored_rows() == []  # nothing was submitted
