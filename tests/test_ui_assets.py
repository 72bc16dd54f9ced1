"""The admin UI's asset pages (the asset list, an asset's keys), the task instance page's
"Asset keys it wrote" and asset keys in search, through Flask's test client with CSRF on: full
pages and htmx fragments, editing as an editor, refusals for viewers. An asset's key page is
the task instance page's code and templates (webapp/ui/owners.py), without expiry."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

import pytest
from markupsafe import escape
from sqlalchemy import select

from support import csrf_token, shown_values, table_rows, ti_page_url
from webapp import assets
from webapp.auth import tokens
from webapp.auth.name_patterns import EVERYTHING
from webapp.extensions import db
from webapp.models import AssetState, KeyChange

HTMX = {"HX-Request": "true"}
# "/", "?", "#", spaces and non-ASCII: names are shown as they are and pages found by id.
ODD_NAME = "s3://lake/ventes été/part?v=2#frag"
ODD_URI = "s3://lake/ventes%20%C3%A9t%C3%A9/part"


@pytest.fixture
def watcher_auth(app):
    def _headers(name: str) -> dict[str, str]:
        with app.app_context():
            return {"Authorization": f"Bearer {tokens.issue_for_watcher(name)[0]}"}

    return _headers


@pytest.fixture
def asset_rows(app):
    """Every asset_state row: {key: row}."""

    def _rows():
        with app.app_context():
            rows = db.session.execute(select(AssetState).order_by(AssetState.id)).scalars().all()
            db.session.expunge_all()
            return {row.key: row for row in rows}

    return _rows


def history(app):
    with app.app_context():
        changes = db.session.execute(select(KeyChange).order_by(KeyChange.id)).scalars().all()
        db.session.expunge_all()
        return changes


def version_of(html: str) -> str:
    return unescape(re.search(r'name="version"[^>]*value="([^"]+)"', html).group(1))


def section(html: str, heading_id: str) -> str:
    """The HTML from a section's heading to the next section (or the end)."""
    start = html.index(f'id="{heading_id}"')
    end = html.find("<section", start)
    return html[start:] if end == -1 else html[start:end]


# --- the header and the asset list ---------------------------------------------------------------


def test_every_page_links_to_the_assets(login_as, ti_id):
    viewer = login_as("viewer")
    for path in ("/", "/dags/dag", ti_page_url(), "/search", "/assets"):
        assert '<a href="/assets">Assets</a>' in viewer.get(path).text, path


def test_the_asset_list_when_there_are_none_says_how_to_register_one(login_as):
    html = login_as("viewer").get("/assets").text
    assert "No assets yet." in html
    assert "<code>POST /api/v2/assets</code>" in html and "<code>taskstore assets create" in html
    assert "<table" not in html


def test_the_asset_list_shows_keys_last_write_and_who(login_as, make_run, make_asset, asset_put, worker_auth,
                                                      watcher_auth, admin_auth, client):
    made = make_run(tasks=(("copy", [0, 1]),))
    odd = make_asset(ODD_NAME, ODD_URI, group="lake")
    watched = make_asset("watched", "file:///watched")
    by_api = make_asset("by-api")
    make_asset("empty")
    viewer = login_as("viewer")
    asset_put(worker_auth(made[("copy", 1)]), ODD_NAME, "watermark", "2026-12-01")
    asset_put(worker_auth(made[("copy", 1)]), ODD_NAME, "rows", 120)
    asset_put(watcher_auth("s3-sensor"), "watched", "etag", "abc")
    response = client.put(f"/api/v2/assets/{by_api}/state-store/k", json={"value": 1}, headers=admin_auth("editor"))
    assert response.status_code == 201, response.text

    page = viewer.get("/assets")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    rows = table_rows(page.text)
    assert rows[0] == ["Name", "URI", "Group", "Keys", "Last write", "By"]
    assert [row[0] for row in rows[1:]] == ["by-api", "empty", ODD_NAME, "watched"]  # by name
    odd_row = rows[3]
    assert odd_row[1:4] == [ODD_URI, "lake", "2"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (a moment|a second|\d+ seconds) ago", odd_row[4])
    assert odd_row[5] == "copy [1] dag · run_1"
    assert rows[2][2:] == ["—", "0", "—", "—"]  # no keys: no last write
    assert rows[4][5] == "s3-sensor watcher"
    assert re.fullmatch(r"api-key:test-editor-\w+ API key", rows[1][5])
    html = page.text
    # The name is shown escaped and links to the asset's page by id; the writer to its task instance.
    assert f'<a href="/assets/{odd}">{escape(ODD_NAME)}</a>' in html
    assert '<a href="/dags/dag/runs/run_1/tasks/copy?map_index=1">copy [1]</a>' in html
    assert f'<a href="/assets/{watched}">watched</a>' in html
    assert "4 assets." in html


def test_the_asset_list_filters_by_name_and_uri_and_answers_htmx_with_the_table(login_as, make_asset):
    make_asset("Orders", "postgres://warehouse/public/orders")
    make_asset(ODD_NAME, ODD_URI)
    make_asset("order_items", "s3://lake/order_items")
    make_asset("100%", "file:///percent")
    viewer = login_as("viewer")

    def names(html):  # sorted here: the databases' collations order "Orders" and "order_items" differently
        return sorted(row[0] for row in table_rows(html)[1:])

    assert names(viewer.get("/assets?name=ORDER").text) == ["Orders", "order_items"]  # ignoring case
    assert names(viewer.get("/assets?uri=s3://").text) == ["order_items", ODD_NAME]
    assert names(viewer.get("/assets?name=order&uri=postgres").text) == ["Orders"]
    assert names(viewer.get(f"/assets?name={quote('été/part?v')}").text) == [ODD_NAME]
    assert names(viewer.get(f"/assets?name={quote('%')}").text) == ["100%"]  # % matches itself
    filtered = viewer.get("/assets?name=order").text
    assert 'name="name" type="search" value="order"' in filtered and "2 assets match." in filtered
    nothing = viewer.get("/assets?name=nothing&uri=here").text
    assert table_rows(nothing)[1] == ["No asset whose name contains “nothing” and whose URI contains “here”."]
    assert 'value="nothing"' in nothing  # the filter form stays, to change the filter

    # The filter form asks htmx for the table alone; a history restore gets the page.
    fragment = viewer.get("/assets?name=order", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text and "HX-Request" in fragment.headers["Vary"]
    assert names(fragment.text) == ["Orders", "order_items"]
    assert 'hx-get="/assets" hx-target="#asset-list"' in viewer.get("/assets").text
    restore = viewer.get("/assets?name=order", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_the_asset_list_pages(login_as, make_asset, monkeypatch):
    from webapp.ui import asset_views

    monkeypatch.setattr(asset_views, "ASSETS_PER_PAGE", 2)
    for name in ("a1", "a2", "a3", "b1"):
        make_asset(name)
    viewer = login_as("viewer")
    first = viewer.get("/assets?name=a").text
    assert [row[0] for row in table_rows(first)[1:]] == ["a1", "a2"] and "1–2 of 3" in first
    following = unescape(re.search(r'href="([^"]+)">Next', first).group(1))
    assert "name=a" in following and "offset=2" in following  # the filter is kept
    assert [row[0] for row in table_rows(viewer.get(following).text)[1:]] == ["a3"]


# --- an asset's page ------------------------------------------------------------------------


def test_the_asset_page_shows_its_keys_without_expiry(login_as, make_run, make_asset, asset_put, worker_auth):
    made = make_run(tasks=(("copy", [0, 1]), ("load", None)))
    asset_id = make_asset(ODD_NAME, ODD_URI, group="lake")
    make_asset("other")
    viewer = login_as("viewer")
    asset_put(worker_auth(made[("copy", 1)]), ODD_NAME, "watermark", {"partition": "dt=2026-12-01", "rows": [1, 2]})
    asset_put(worker_auth(made["load"]), ODD_NAME, "a/b?c#d é", "odd key")
    asset_put(worker_auth(made["load"]), "other", "not-here", 1)

    page = viewer.get(f"/assets/{asset_id}")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.text
    assert f"<h1>{escape(ODD_NAME)} <small>asset</small></h1>" in html
    assert f"<title>{escape(ODD_NAME)} · Assets · Task Store</title>" in html
    assert f"<dd><code>{escape(ODD_URI)}</code></dd>" in html and "<dd>lake</dd>" in html
    crumbs = html[html.index('aria-label="Breadcrumb"'):html.index("</nav>")]
    assert '<a href="/assets">Assets</a>' in crumbs and f'<span aria-current="page">{escape(ODD_NAME)}</span>' in crumbs
    rows = table_rows(html)
    assert rows[0] == ["Key ↑", "Value", "Updated", "Last written by"]  # by key; no Expires column; viewers: no Actions
    assert [row[0] for row in rows[1:]] == ["a/b?c#d é", "watermark"]  # ordered by key; other assets' keys absent
    assert rows[2][3] == "copy [1] dag · run_1" and rows[1][3] == "load dag · run_1"
    assert re.search(r"UTC (a moment|a second|\d+ seconds) ago$", rows[2][2])
    pretty = '{\n  "partition": "dt=2026-12-01",\n  "rows": [\n    1,\n    2\n  ]\n}'
    assert pretty in shown_values(html)
    assert '<a href="/dags/dag/runs/run_1/tasks/copy?map_index=1">copy [1]</a>' in html
    assert '<a href="/dags/dag/runs/run_1/tasks/load">load</a>' in html  # map index -1: none in the link
    # The table refreshes itself, always (an asset is not "running" or not).
    assert f'<tbody id="key-rows" hx-get="/assets/{asset_id}" hx-trigger="every 3s" hx-swap="innerHTML">' in html
    assert "Refreshes every 3 seconds." in html
    for expiry_text in ("Expires", "Expiration", "Extend", "expired"):
        assert expiry_text not in html, expiry_text
    assert "These keys never expire." in html


def test_the_asset_page_answers_htmx_polls_with_its_rows(login_as, ti_id, make_asset, asset_put, worker_auth):
    asset_id = make_asset("orders")
    viewer = login_as("viewer")
    empty = viewer.get(f"/assets/{asset_id}", headers=HTMX)
    assert empty.status_code == 200  # never 286: the polling goes on
    assert empty.text.strip().startswith(
        '<tr class="no-keys"><td colspan="4" class="empty">This asset has no keys.</td></tr>')
    assert '<span id="key-count" hx-swap-oob="true">0</span>' in empty.text  # the count follows the rows
    asset_put(worker_auth(ti_id), "orders", "written-by-worker", 7)
    fragment = viewer.get(f"/assets/{asset_id}", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text and "HX-Request" in fragment.headers["Vary"]
    assert "<code>written-by-worker</code>" in fragment.text
    restore = viewer.get(f"/assets/{asset_id}", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert restore.status_code == 200 and "<html" in restore.text


def test_an_unknown_asset_is_a_404_page(login_as):
    viewer = login_as("viewer")
    response = viewer.get("/assets/999999")
    assert response.status_code == 404 and "Asset with id 999999 not found" in response.text
    assert "<html" in response.text
    assert viewer.get("/assets/not-a-number").status_code == 404


# --- editing (editor) -----------------------------------------------------------------------


@pytest.fixture
def asset_editor(login_as, ti_id, make_asset, asset_put, worker_auth):
    """An editor, and the asset ODD_NAME holding one key a task instance wrote: (client, asset id)."""
    asset_id = make_asset(ODD_NAME, ODD_URI)
    asset_put(worker_auth(ti_id), ODD_NAME, "watermark", {"dt": "2026-12-01"})
    return login_as("editor"), asset_id


def test_editors_get_the_add_form_and_row_controls_without_expiry(asset_editor):
    editor, asset_id = asset_editor
    html = editor.get(f"/assets/{asset_id}").text
    assert table_rows(html)[0] == ["Key ↑", "Value", "Updated", "Last written by", "Actions"]
    assert '<label for="add-key">Key</label>' in html and '<label for="add-value">Value</label>' in html
    assert f'<form method="post" action="/assets/{asset_id}" class="edit-form" hx-post="/assets/{asset_id}"' in html
    assert 'aria-label="Edit watermark"' in html and 'aria-label="Delete watermark"' in html
    assert f'action="/assets/{asset_id}/clear"' in html and ">Clear all keys</button>" in html
    for expiry_text in ("Expiration", "Expires at", "datetime-local", "Extend", "every map index", "map_index"):
        assert expiry_text not in html, expiry_text


def test_add_a_key(asset_editor, asset_rows, app):
    editor, asset_id = asset_editor
    token = csrf_token(editor.get(f"/assets/{asset_id}").text)
    response = editor.post(f"/assets/{asset_id}", data={"csrf_token": token, "key": "a/b?c#d é", "value": '{"n": 1}'})
    assert response.status_code == 303 and response.headers["Location"] == f"/assets/{asset_id}"
    row = asset_rows()["a/b?c#d é"]
    assert (row.value, row.expires_at, row.written_by_kind, row.written_by_name) == ('{"n":1}', None, "api", "editor")
    page = editor.get(f"/assets/{asset_id}").text
    assert "Added key &#39;a/b?c#d é&#39;." in page
    assert table_rows(page)[1][3] == "editor person"  # who last wrote it
    [change] = history(app)
    assert (change.scope_kind, change.asset_id, change.asset_name, change.actor, change.action, change.key) == \
        ("asset", asset_id, ODD_NAME, "editor", "set", "a/b?c#d é")


@pytest.mark.parametrize("key, value, message", [
    ("watermark", '"again"', "A key named &#39;watermark&#39; already exists; edit it instead."),
    ("new", "{not json", "Value is not valid JSON"),
    ("new", "null", "Value must not be null; delete the key instead"),
    ("a" * 513, "1", "Key is 513 characters long; the limit is 512"),
])
def test_a_refused_add_keeps_the_input_and_writes_nothing(asset_editor, asset_rows, app, key, value, message):
    editor, asset_id = asset_editor
    before = asset_rows()
    token = csrf_token(editor.get(f"/assets/{asset_id}").text)
    response = editor.post(f"/assets/{asset_id}", data={"csrf_token": token, "key": key, "value": value})
    assert response.status_code == 422
    assert message in response.text
    assert f"{value}</textarea>" in unescape(response.text)  # what was typed is still there
    assert "Expiration" not in response.text
    assert {k: (r.value, r.version) for k, r in asset_rows().items()} == \
        {k: (r.value, r.version) for k, r in before.items()}
    assert history(app) == []


def test_edit_in_place_with_htmx(asset_editor, asset_rows, app):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/edit?key=watermark"
    fragment = editor.get(url, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<tr class="editing">')  # pauses the polling (static/app.js)
    assert '<td colspan="5">' in fragment.text
    assert "&#34;dt&#34;: &#34;2026-12-01&#34;" in fragment.text  # pretty-printed for editing
    assert "Expiration" not in fragment.text and "Expires at" not in fragment.text
    assert f'hx-post="{url}"' in fragment.text
    assert f'hx-get="/assets/{asset_id}/row?key=watermark"' in fragment.text  # Cancel
    before = asset_rows()["watermark"]

    saved = editor.post(url, headers=HTMX, data={"csrf_token": csrf_token(fragment.text),
                                                 "version": version_of(fragment.text), "value": '{"dt": "2026-12-02"}'})
    assert saved.status_code == 200 and saved.text.lstrip().startswith("<tr>") and "Saved." in saved.text
    assert '{\n  "dt": "2026-12-02"\n}' in shown_values(saved.text) and "editor" in saved.text
    after = asset_rows()["watermark"]
    assert (after.value, after.version, after.expires_at) == ('{"dt":"2026-12-02"}', before.version + 1, None)
    assert (after.written_by_kind, after.written_by_name, after.written_by_task_id) == ("api", "editor", None)
    change = history(app)[-1]
    assert (change.old_value, change.new_value, change.scope_kind) == ('{"dt":"2026-12-01"}', '{"dt":"2026-12-02"}',
                                                                       "asset")

    row = editor.get(f"/assets/{asset_id}/row?key=watermark", headers=HTMX)  # what Cancel puts back
    assert row.text.lstrip().startswith("<tr>") and "<code>watermark</code>" in row.text


def test_edit_without_javascript_is_a_page_and_a_redirect(asset_editor, asset_rows):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/edit?key=watermark"
    page = editor.get(url)
    assert page.status_code == 200 and "<html" in page.text
    assert f"<h1>Edit key <small>{escape(ODD_NAME)}</small></h1>" in page.text
    assert f'<a href="/assets/{asset_id}">Cancel</a>' in page.text and "Expiration" not in page.text
    response = editor.post(url, data={"csrf_token": csrf_token(page.text), "version": version_of(page.text),
                                      "value": "[1, 2]"})
    assert response.status_code == 303 and response.headers["Location"] == f"/assets/{asset_id}"
    assert asset_rows()["watermark"].value == "[1,2]"
    assert "Saved key &#39;watermark&#39;." in editor.get(f"/assets/{asset_id}").text


def test_a_bad_value_in_the_edit_form_is_refused_and_kept(asset_editor, asset_rows):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/edit?key=watermark"
    form = editor.get(url, headers=HTMX).text
    data = {"csrf_token": csrf_token(form), "version": version_of(form), "value": "{oops"}
    response = editor.post(url, headers=HTMX, data=data)
    assert response.status_code == 422
    assert 'class="field-error">Value is not valid JSON' in response.text and "{oops</textarea>" in response.text
    assert editor.post(url, data=data).status_code == 422
    assert asset_rows()["watermark"].value == '{"dt":"2026-12-01"}'


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_edit_is_refused_and_shows_the_current_value(asset_editor, asset_rows, asset_put, worker_auth,
                                                             ti_id, app, htmx):
    editor, asset_id = asset_editor
    headers = HTMX if htmx else {}
    url = f"/assets/{asset_id}/edit?key=watermark"
    form = editor.get(url, headers=headers).text
    asset_put(worker_auth(ti_id), ODD_NAME, "watermark", {"written": "by the worker"})  # meanwhile

    data = {"csrf_token": csrf_token(form), "version": version_of(form), "value": '"mine"'}
    response = editor.post(url, headers=headers, data=data)
    assert response.status_code == 409
    assert "A worker changed this key since you opened the form; nothing was changed." in response.text
    assert "&#34;written&#34;: &#34;by the worker&#34;" in response.text and "Expires:" not in response.text
    assert "\n&#34;mine&#34;</textarea>" in response.text
    assert asset_rows()["watermark"].value == '{"written":"by the worker"}' and history(app) == []

    data.update(version=version_of(response.text), csrf_token=csrf_token(response.text))
    assert editor.post(url, headers=headers, data=data).status_code in (200, 303)  # knowingly, now
    assert asset_rows()["watermark"].value == '"mine"'


def test_editing_a_key_deleted_meanwhile_is_refused(asset_editor, asset_rows, client, worker_auth, ti_id):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/edit?key=watermark"
    form = editor.get(url, headers=HTMX).text
    deleted = client.delete("/execution/store/asset/by-name/value", query_string={"name": ODD_NAME, "key": "watermark"},
                            headers=worker_auth(ti_id))
    assert deleted.status_code == 204
    response = editor.post(url, headers=HTMX, data={"csrf_token": csrf_token(form), "version": version_of(form),
                                                    "value": "2"})
    assert response.status_code == 409
    assert "This key was deleted since you opened the form" in response.text and "expired" not in response.text
    assert asset_rows() == {}
    assert editor.get(url, headers=HTMX).text == ""  # its row goes
    assert editor.get(url).status_code == 404


@pytest.mark.parametrize("htmx", [False, True])
def test_delete_after_confirming(asset_editor, asset_rows, app, htmx):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/delete?key=watermark"
    confirm = editor.get(url, headers=HTMX if htmx else {})
    assert confirm.status_code == 200 and '<button type="submit" class="danger">Delete</button>' in confirm.text
    assert ("<html" in confirm.text) is not htmx and "Delete key <code>watermark</code>?" in confirm.text
    assert asset_rows() != {}  # asking is not deleting
    response = editor.post(url, headers=HTMX if htmx else {},
                           data={"csrf_token": csrf_token(confirm.text), "version": version_of(confirm.text)})
    if htmx:
        assert response.status_code == 200 and "Deleted key <code>watermark</code>." in response.text
        assert ">Undo</button>" in response.text  # the row becomes a notice offering Undo
    else:
        assert response.status_code == 303  # back to the asset's page, which offers Undo (its history row)
        assert re.fullmatch(rf"/assets/{asset_id}\?undo=\d+", response.headers["Location"])
        assert "Deleted key &#39;watermark&#39;." in editor.get(f"/assets/{asset_id}").text
    assert asset_rows() == {}
    change = history(app)[-1]
    assert (change.action, change.scope_kind, change.old_value, change.new_value) == \
        ("delete", "asset", '{"dt":"2026-12-01"}', None)


def test_a_stale_delete_is_refused(asset_editor, asset_rows, asset_put, worker_auth, ti_id):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/delete?key=watermark"
    confirm = editor.get(url).text
    asset_put(worker_auth(ti_id), ODD_NAME, "watermark", "newer")
    response = editor.post(url, data={"csrf_token": csrf_token(confirm), "version": version_of(confirm)})
    assert response.status_code == 409 and "&#34;newer&#34;" in response.text
    assert asset_rows()["watermark"].value == '"newer"'


def test_clear_all_keys_after_a_warning(asset_editor, asset_rows, asset_put, worker_auth, ti_id, make_asset, app):
    editor, asset_id = asset_editor
    asset_put(worker_auth(ti_id), ODD_NAME, "second", 2)
    make_asset("other")
    asset_put(worker_auth(ti_id), "other", "kept", 3)
    confirm = editor.get(f"/assets/{asset_id}/clear")
    assert confirm.status_code == 200
    warning = confirm.text[confirm.text.index('class="warning"'):confirm.text.rindex("</form>")]
    assert f"every key of asset <code>{escape(ODD_NAME)}</code> (<code>{escape(ODD_URI)}</code>)" in warning
    assert "watermarks" in warning and "will start over" in warning
    assert '<button type="submit" class="danger">Clear</button>' in warning and "all_map_indices" not in warning
    assert f'<a href="/assets/{asset_id}">Cancel</a>' in warning
    assert set(asset_rows()) == {"watermark", "second", "kept"}  # asking is not clearing

    response = editor.post(f"/assets/{asset_id}/clear", data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 303 and response.headers["Location"] == f"/assets/{asset_id}"
    assert set(asset_rows()) == {"kept"}
    page = editor.get(f"/assets/{asset_id}").text
    assert "Cleared 2 keys of this asset." in page and "This asset has no keys." in page
    assert sorted((c.action, c.key) for c in history(app)) == [("clear", "second"), ("clear", "watermark")]


def test_the_history_of_an_asset_has_no_expiry_column(asset_editor, app):
    editor, asset_id = asset_editor
    url = f"/assets/{asset_id}/edit?key=watermark"
    form = editor.get(url).text
    editor.post(url, data={"csrf_token": csrf_token(form), "version": version_of(form), "value": '{"dt": "x"}'})
    token = csrf_token(form)
    editor.post(f"/assets/{asset_id}", data={"csrf_token": token, "key": "added", "value": "1"})
    html = editor.get(f"/assets/{asset_id}").text
    table = table_rows(section(html, "history-heading"))
    assert table[0] == ["When", "Who", "Action", "Key", "Value (old → new)"]
    assert [row[1:5] for row in table[1:]] == [
        ["editor", "created", "added", "— → 1"],
        ["editor", "value changed", "watermark", '{"dt":"2026-12-01"} → {"dt":"x"}'],
    ]
    assert re.search(r"UTC (a moment|a second|\d+ seconds) ago$", table[1][0])


def test_asset_pages_have_no_extend_route(asset_editor):
    editor, asset_id = asset_editor
    token = csrf_token(editor.get(f"/assets/{asset_id}").text)
    response = editor.post(f"/assets/{asset_id}/extend?key=watermark", data={"csrf_token": token, "by": "1d"})
    assert response.status_code in (404, 405)


# --- viewers --------------------------------------------------------------------------------

CHANGE_ROUTES = [
    ("get", "/edit", {}), ("get", "/row", {}), ("get", "/delete", {}), ("get", "/clear", {}),
    ("post", "", {"key": "new", "value": "1"}), ("post", "/edit", {"value": "2"}),
    ("post", "/delete", {}), ("post", "/clear", {}),
]


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("method, action, data", CHANGE_ROUTES)
def test_viewers_see_no_edit_controls_and_are_refused_every_change_route(
        login_as, ti_id, make_asset, asset_put, worker_auth, asset_rows, app, method, action, data, htmx):
    asset_id = make_asset(ODD_NAME)
    asset_put(worker_auth(ti_id), ODD_NAME, "k", 1)
    before = {key: (row.value, row.version) for key, row in asset_rows().items()}
    viewer = login_as("viewer")
    page = viewer.get(f"/assets/{asset_id}").text
    assert [text for text in (">Edit<", ">Delete<", "Add key", "Clear all keys", "Actions") if text in page] == []
    with app.app_context():
        from webapp import store
        etag = store.get_entry(store.scope_of_asset(assets.get(asset_id), reader_dags=EVERYTHING), "k").etag
    target = f"/assets/{asset_id}{action}" + ("" if action in ("", "/clear") else "?key=k")
    headers = HTMX if htmx else {}
    if method == "get":
        response = viewer.get(target, headers=headers)
    else:
        response = viewer.post(target, headers=headers, data={"csrf_token": csrf_token(page), "version": etag, **data})
    assert response.status_code == 403
    assert {key: (row.value, row.version) for key, row in asset_rows().items()} == before
    assert history(app) == []


@pytest.mark.parametrize("action, data", [("", {"key": "new", "value": "1"}), ("/edit", {"value": "2"}),
                                          ("/delete", {}), ("/clear", {})])
def test_posts_without_a_valid_csrf_token_are_refused(asset_editor, asset_rows, app, action, data):
    editor, asset_id = asset_editor
    version = version_of(editor.get(f"/assets/{asset_id}/delete?key=watermark").text)
    target = f"/assets/{asset_id}{action}" + ("" if action in ("", "/clear") else "?key=watermark")
    response = editor.post(target, data={"version": version, **data})
    assert response.status_code == 400 and "CSRF" in response.text
    assert set(asset_rows()) == {"watermark"} and history(app) == []


# --- the task instance page and search ---------------------------------------------------------


def test_the_task_instance_page_lists_the_asset_keys_it_wrote(login_as, make_run, make_asset, asset_put, worker_auth,
                                                               watcher_auth):
    made = make_run(tasks=(("copy", [0, 1]),))
    odd = make_asset(ODD_NAME, ODD_URI)
    orders = make_asset("orders")
    asset_put(worker_auth(made[("copy", 1)]), ODD_NAME, "watermark", 1)
    asset_put(worker_auth(made[("copy", 1)]), "orders", "cursor", 2)
    asset_put(worker_auth(made[("copy", 1)]), "orders", "taken-over", 3)
    asset_put(watcher_auth("sensor"), "orders", "taken-over", 4)  # its latest write is the watcher's
    viewer = login_as("viewer")

    html = viewer.get(ti_page_url(task_id="copy", map_index=1)).text
    writes = section(html, "asset-writes-heading")
    assert table_rows(writes)[0] == ["Asset", "Key", "Written"]
    assert [row[:2] for row in table_rows(writes)[1:]] == [["orders", "cursor"], [ODD_NAME, "watermark"]]
    assert f'<a href="/assets/{odd}">{escape(ODD_NAME)}</a>' in writes
    assert f'<a href="/assets/{orders}">orders</a>' in writes
    # A task instance that wrote none has no such section.
    assert "asset-writes-heading" not in viewer.get(ti_page_url(task_id="copy", map_index=0)).text


def test_search_finds_asset_keys_in_a_second_table(login_as, make_run, make_asset, asset_put, worker_auth,
                                                   worker_put):
    made = make_run("etl", "run_1")
    odd = make_asset(ODD_NAME, ODD_URI)
    make_asset("orders")
    worker_put(made["task"], "task-watermark", 1)
    asset_put(worker_auth(made["task"]), ODD_NAME, "Watermark/été", {"dt": "2026-12-01"})
    asset_put(worker_auth(made["task"]), "orders", "unrelated", 2)
    viewer = login_as("viewer")

    html = viewer.get("/search?q=WATERMARK").text
    tasks, found = section(html, "task-keys-heading"), section(html, "asset-keys-heading")
    assert [row[4] for row in table_rows(tasks)[1:]] == ["task-watermark"]
    assert table_rows(found)[0] == ["Asset", "Key", "Value", "Updated"]
    [hit] = table_rows(found)[1:]
    assert hit[:3] == [ODD_NAME, "Watermark/été", '{"dt":"2026-12-01"}'] and " UTC" in hit[3] and hit[3].endswith("ago")
    assert f'<a href="/assets/{odd}">{escape(ODD_NAME)}</a>' in found
    assert "1 asset key found." in found
    # The DAG narrows the task keys only, as the hint says.
    in_dag = viewer.get("/search?q=watermark&dag_id=other").text
    assert "No live key contains" in in_dag and "Watermark/été" in section(in_dag, "asset-keys-heading")
    assert "to narrow the task keys to it" in in_dag
    assert "No asset key contains “nothing”." in viewer.get("/search?q=nothing").text


def test_search_pages_asset_keys_on_their_own(login_as, ti_id, make_asset, asset_put, worker_auth, monkeypatch):
    from webapp.ui import search

    monkeypatch.setattr(search, "RESULTS_PER_PAGE", 2)
    make_asset("orders")
    for number in range(3):
        asset_put(worker_auth(ti_id), "orders", f"key{number}", number)
    viewer = login_as("viewer")
    first = viewer.get("/search?q=key").text
    assert [row[1] for row in table_rows(section(first, "asset-keys-heading"))[1:]] == ["key2", "key1"]
    following = unescape(re.search(r'aria-label="Pages of asset keys">.*?href="([^"]+)">Next', first, re.S).group(1))
    assert "asset_offset=2" in following and "q=key" in following
    second = viewer.get(following).text
    assert [row[1] for row in table_rows(section(second, "asset-keys-heading"))[1:]] == ["key0"]


# --- escaping -------------------------------------------------------------------------------

XSS_NAME = '<script>alert("asset")</script>/?#'
XSS_KEY = "<img src=x onerror=alert(1)>"
XSS_VALUE = {"html": "</pre><svg onload=alert(2)>"}
XSS_WATCHER = "<b onmouseover=alert(3)>w</b>"


def test_names_keys_values_and_writers_are_shown_escaped(login_as, ti_id, make_asset, asset_put, worker_auth,
                                                          watcher_auth):
    asset_id = make_asset(XSS_NAME, "<i>uri</i>", group="<u>group</u>")
    asset_put(worker_auth(ti_id), XSS_NAME, XSS_KEY, XSS_VALUE)
    asset_put(watcher_auth(XSS_WATCHER), XSS_NAME, "by-watcher", "<a href=javascript:alert(4)>x</a>")
    editor = login_as("editor")
    pages = [
        editor.get("/assets").text,
        editor.get(f"/assets/{asset_id}").text,
        editor.get(f"/assets/{asset_id}", headers=HTMX).text,
        editor.get(f"/assets/{asset_id}/edit", query_string={"key": XSS_KEY}, headers=HTMX).text,
        editor.get(f"/assets/{asset_id}/delete", query_string={"key": XSS_KEY}).text,
        editor.get(f"/assets/{asset_id}/clear").text,
        editor.get("/search", query_string={"q": "<img"}).text,
        editor.get(ti_page_url()).text,
    ]
    for html in pages:
        for marker in ("<script>alert", "<img src=x", "<svg onload", "<b onmouseover", "<a href=javascript", "<i>uri",
                       "<u>group"):
            assert marker not in html
    assert escape(XSS_NAME) in pages[0] and escape(XSS_WATCHER) in pages[1]
    assert escape(XSS_KEY) in pages[6] and escape(XSS_NAME) in pages[7]
