"""JSON people can read and write in the admin UI: values highlighted by token (escaped, cheap
for huge ones, coloured legibly in light and dark), and the Value field's live check, which
says what Save says."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from support import csrf_token, log_in, shown_values, ti_page_url
from webapp.ui.formatting import HIGHLIGHT_MAX_CHARS, highlighted_json

PAGE = ti_page_url()
STATIC = Path(__file__).resolve().parent.parent / "static"
# Browsers send a textarea's line breaks as CRLF: the line and column must not depend on it.
BROKEN = '{\r\n  "a": 1\r\n  "b": 2\r\n}'
BROKEN_MESSAGE = "Value is not valid JSON at line 3, column 3: Expecting ',' delimiter"


@pytest.fixture
def viewer(login_as, ti_id):
    return login_as("viewer")


@pytest.fixture
def editor(login_as, ti_id):
    return login_as("editor")


def value_cell(html: str, key: str) -> str:
    """The HTML of one key's value cell on a key page."""
    row = html[html.index(f"<code>{key}</code>"):]
    return row[row.index('<td class="value">'):row.index("</td>", row.index('<td class="value">'))]


def check(client, value: str, token: str | None = None):
    """The live check, as htmx posts it: the value alone, the CSRF token in a header."""
    token = token or csrf_token(client.get(PAGE).text)
    return client.post("/json-check", data={"value": value}, headers={"X-CSRFToken": token, "HX-Request": "true"})


# --- values highlighted ---------------------------------------------------------------------


def test_each_kind_of_token_gets_its_class_and_the_text_reads_as_before(viewer, ti_id, worker_put):
    value = {"name": "x", "count": 3, "ratio": 0.5, "ok": True, "gone": None}
    worker_put(ti_id, "mixed", value)
    html = viewer.get(PAGE).text
    cell = value_cell(html, "mixed")
    assert '<span class="j-nt">&#34;name&#34;</span>: <span class="j-s2">&#34;x&#34;</span>' in cell
    assert '<span class="j-mi">3</span>' in cell and '<span class="j-mf">0.5</span>' in cell
    assert '<span class="j-kc">true</span>' in cell and '<span class="j-kc">null</span>' in cell
    assert shown_values(html) == [json.dumps(value, indent=2)]
    assert 'rel="stylesheet" href="/static/json.css"' in html


def test_html_in_a_value_is_shown_as_text(viewer, ti_id, worker_put):
    value = {"html": "</pre><script>alert(1)</script>", "quote": "\"' onmouseover=alert(2) x='"}
    worker_put(ti_id, "xss", value)
    html = viewer.get(PAGE).text
    cell = value_cell(html, "xss")
    assert "<script>" not in cell and "</pre><script>" not in cell and "' onmouseover" not in cell
    assert '<span class="j-s2">&#34;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#34;</span>' in cell
    assert shown_values(html) == [json.dumps(value, indent=2)]


@pytest.mark.parametrize("over", [False, True], ids=["at the threshold", "past it"])
def test_only_values_up_to_the_threshold_are_highlighted(viewer, ti_id, worker_put, over):
    # A string value is pretty-printed as itself: its quotes plus its characters.
    value = "x" * (HIGHLIGHT_MAX_CHARS - 2 + over)
    worker_put(ti_id, "big", value)
    html = viewer.get(PAGE).text
    cell = value_cell(html, "big")
    assert ('<span class="j-s2">' in cell) is not over
    assert "<details>" in cell  # long values stay collapsed behind their preview
    assert shown_values(html) == [json.dumps(value)]


# --- colours --------------------------------------------------------------------------------


def luminance(colour: str) -> float:
    channels = [int(colour[index:index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted([luminance(one), luminance(other)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def token_colours(css: str) -> dict[str, str]:
    """``{class: colour}`` of json.css's rules such as ``pre.json .j-mi, pre.json .j-mf { color: #… }``."""
    colours = {}
    for selectors, colour in re.findall(r"([^{}]+)\{\s*color:\s*(#[0-9a-f]{6});\s*\}", css):
        for name in re.findall(r"\.(j-\w+)", selectors):
            colours[name] = colour
    return colours


def test_token_colours_keep_aa_contrast_on_every_background_in_light_and_dark():
    app_css = (STATIC / "app.css").read_text()
    light_css, dark_css = (STATIC / "json.css").read_text().split("@media (prefers-color-scheme: dark)")
    # The backgrounds a value sits on, light then dark: the page, the bands (an edited row),
    # and a row under the pointer.
    pages, bands = re.findall(r"--bg: (#\w{6})", app_css), re.findall(r"--band: (#\w{6})", app_css)
    hovered = re.findall(r"tbody tr:hover \{ background: (#\w{6}); \}", app_css)
    assert len(pages) == len(bands) == len(hovered) == 2
    lexed = {"j-nt", "j-s2", "j-mi", "j-mf", "j-kc"}  # every class a stored value's tokens get
    for mode, css in enumerate((light_css, dark_css)):
        backgrounds = (pages[mode], bands[mode], hovered[mode])
        colours = token_colours(css)
        assert lexed <= set(colours), lexed - set(colours)
        poor = [(name, colour, background) for name, colour in colours.items() for background in backgrounds
                if contrast(colour, background) < 4.5]
        assert poor == []


def test_the_classes_coloured_are_the_ones_values_get():
    """A Pygments release naming tokens otherwise would leave values uncoloured: caught here."""
    value = json.dumps({"key": ["text", 1, 1.5, True, False, None]}, indent=2)
    used = set(re.findall(r'class="(j-\w+)"', highlighted_json(value)))
    assert used == set(token_colours((STATIC / "json.css").read_text()))


# --- the live check -------------------------------------------------------------------------


def test_the_forms_ask_for_the_live_check_and_number_their_lines(editor, ti_id, worker_put):
    html = editor.get(PAGE).text
    assert 'data-json="1"' in re.search(r'<textarea[^>]* id="add-value"[^>]*>', html).group(0)
    status = re.search(r'<small id="add-value-check"[^>]*>', html).group(0)
    assert 'aria-live="polite"' in status and 'hx-post="/json-check"' in status
    assert 'hx-trigger="json-input"' in status and 'hx-params="value"' in status  # app.js sends json-input

    worker_put(ti_id, "k", {"a": 1})
    fragment = editor.get(ti_page_url(action="edit", key="k"), headers={"HX-Request": "true"}).text
    field = re.search(r'<textarea[^>]* id="(edit-\d+-value)"[^>]*>', fragment)
    assert 'data-json="1"' in field.group(0)
    assert f'<small id="{field.group(1)}-check" class="json-check" aria-live="polite" hx-post="/json-check"' in fragment
    # The check swaps its answer into itself, not into the row the edit form swaps.
    assert 'hx-target="this" hx-swap="innerHTML"' in fragment


@pytest.mark.parametrize("value, message", [
    ('{"offset": 1200}', "Valid JSON"),
    ('"text"', "Valid JSON"),
    (BROKEN, BROKEN_MESSAGE),
    ('{"a": 1', "Value is not valid JSON at line 1, column 8: Expecting ',' delimiter"),
    ("", "Enter a JSON value"),
    ("NaN", "Value is not valid JSON (NaN is not valid JSON)"),
    ("null", "Value must not be null; delete the key instead"),
])
def test_the_live_check_answers_what_save_would_say(editor, value, message):
    response = check(editor, value)
    assert response.status_code == 200
    kind = "json-ok" if message == "Valid JSON" else "json-error"
    assert unescape(response.text) == f'<span class="{kind}">{message}</span>'


def test_the_live_check_applies_the_size_limit(make_app, make_user, make_run):
    client = make_app(max_value_bytes=1024).test_client()
    assert log_in(client, make_user("editor", "editor")).status_code == 302
    make_run()
    response = check(client, '"' + "x" * 1100 + '"')
    assert "Value is 1102 bytes of JSON; the limit is 1024 bytes" in response.text


def test_save_refuses_with_the_live_checks_message(editor, stored_rows):
    token = csrf_token(editor.get(PAGE).text)
    live = re.fullmatch(r'<span class="json-error">(.*)</span>', check(editor, BROKEN, token).text).group(1)
    saved = editor.post(PAGE, data={"csrf_token": token, "key": "k", "value": BROKEN, "expiration": "default",
                                    "expires_at": ""})
    assert saved.status_code == 422 and stored_rows() == []
    error = re.search(r'<p id="add-value-error" class="field-error">([^<]*)</p>', saved.text).group(1)
    assert unescape(error) == unescape(live) == BROKEN_MESSAGE


def test_viewers_and_requests_without_a_csrf_token_get_no_answer(login_as, ti_id):
    viewer = login_as("viewer")
    assert check(viewer, "1").status_code == 403
    assert viewer.post("/json-check", data={"value": "1"}).status_code == 400
