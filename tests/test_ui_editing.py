"""Editing keys, history and search in the admin UI, through Flask's test client with CSRF
protection on: every action as a full-page form post and as an htmx request."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest
from sqlalchemy import select

from support import csrf_token, key_url, log_in, shown_values, table_rows, ti_page_url
from webapp.extensions import db
from webapp.models import KeyChange, utcnow

HTMX = {"HX-Request": "true"}
PAGE = ti_page_url()  # the default task instance's page: /dags/dag/runs/run_1/tasks/task


@pytest.fixture
def editor(login_as, ti_id):
    return login_as("editor")


class Form:
    """What a test needs from the page: the CSRF token and the values of hidden fields."""

    def __init__(self, html: str):
        self.html = html
        self.token = csrf_token(html)

    def version(self) -> str:
        return unescape(re.search(r'name="version"[^>]*value="([^"]+)"', self.html).group(1))


def token(client, path: str = PAGE) -> str:
    return csrf_token(client.get(path).text)


def rows(stored_rows):
    return {row.key: row for row in stored_rows()}


def history_rows(app):
    with app.app_context():
        return db.session.execute(select(KeyChange).order_by(KeyChange.id)).scalars().all()


def add(client, key="k", value='{"a": 1}', expiration="default", expires_at="", **extra):
    data = {"csrf_token": token(client), "key": key, "value": value, "expiration": expiration,
            "expires_at": expires_at, **extra}
    return client.post(PAGE, data=data)


# --- who sees what ----------------------------------------------------------------------------


def test_editors_get_the_add_form_with_its_accessible_names(editor):
    html = editor.get(PAGE).text
    assert '<label for="add-key">Key</label>' in html
    assert '<label for="add-value">Value</label>' in html
    assert '<label for="add-expiration">Expiration</label>' in html
    assert '<label for="add-expires-at">Expires at</label>' in html
    assert 'placeholder="2026-12-31 23:59:59"' in html and "24-hour UTC" in html
    assert '<option selected value="default">Default (30 days)</option>' in html
    assert '<option value="never">Never</option>' in html
    assert '<option value="custom">Custom (Expires at)</option>' in html
    assert '<button type="submit" class="primary">Add key</button>' in html
    assert ">Clear all keys</button>" in html and "every map index" not in html


@pytest.fixture
def editor_of(make_run, make_user):
    """An editor logged in to an app made with other settings (``make_app``), on the default run."""

    def _make(app):
        client = app.test_client()
        assert log_in(client, make_user("editor", "editor")).status_code == 302
        make_run()
        return client

    return _make


def test_default_retention_of_zero_says_never(make_app, editor_of):
    editor = editor_of(make_app(default_retention_days=0))
    assert "Default (never expires)" in editor.get(PAGE).text


def test_viewers_see_no_edit_controls(client, login_as, ti_id, worker_put):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=1))  # with an expiry, editors get the Extend buttons
    controls = [">Edit<", ">Delete<", "Add key", "Clear all keys", "+1 hour", "Actions"]
    as_editor = login_as("editor").get(PAGE).text
    assert [control for control in controls if control not in as_editor] == []  # so their absence below tells
    client.post("/logout", data={"csrf_token": csrf_token(as_editor)})
    as_viewer = login_as("viewer").get(PAGE).text
    assert [control for control in controls if control in as_viewer] == []


def test_mapped_task_instances_offer_clearing_every_map_index(login_as, make_run):
    make_run(tasks=(("copy", [0, 1]),))
    html = login_as("editor").get("/dags/dag/runs/run_1/tasks/copy?map_index=1").text
    assert ">Clear all keys</button>" in html and ">Clear all keys of every map index</button>" in html


# --- add --------------------------------------------------------------------------------------


def test_add_a_key_with_the_default_expiry(editor, app, stored_rows):
    response = add(editor, "spark/job_id", '{"job": "application_42"}')
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    row = rows(stored_rows)["spark/job_id"]
    assert row.value == '{"job":"application_42"}'
    assert timedelta(days=29, hours=23) < row.expires_at - utcnow() <= timedelta(days=30)
    page = editor.get(PAGE).text
    assert "Added key &#39;spark/job_id&#39;." in page
    assert "<code>spark/job_id</code>" in page
    [change] = history_rows(app)
    assert (change.actor, change.action, change.key, change.old_value, change.new_value) == \
        ("editor", "set", "spark/job_id", None, '{"job":"application_42"}')


def test_add_a_key_that_never_expires_or_at_a_custom_time(editor, stored_rows):
    assert add(editor, "forever", "1", expiration="never").status_code == 303
    moment = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    assert add(editor, "custom", "2", expiration="custom",
               expires_at=moment.strftime("%Y-%m-%dT%H:%M")).status_code == 303
    stored = rows(stored_rows)
    assert stored["forever"].expires_at is None
    assert stored["custom"].expires_at == moment  # the browser's local time is read as UTC


@pytest.mark.parametrize("expires_at, message", [
    ("", "Enter a date and time (UTC) for a custom expiry, as 2026-12-31 23:59:59"),
    ("2001-01-01T00:00", "Expires at is in the past; delete the key instead"),
    ("tomorrow", "Enter the time as 2026-12-31 23:59:59 (24-hour, UTC)"),
    ("12/31/2099, 11:59 PM", "Enter the time as 2026-12-31 23:59:59 (24-hour, UTC)"),
])
def test_a_bad_custom_expiry_is_refused_beside_its_field(editor, stored_rows, expires_at, message):
    response = add(editor, "k", "1", expiration="custom", expires_at=expires_at)
    assert response.status_code == 422
    assert f'<p id="add-expires-at-error" class="field-error">{message}</p>' in response.text
    assert stored_rows() == []


@pytest.mark.parametrize("value, message", [
    ("{not json", "Value is not valid JSON"),
    ("NaN", "Value is not valid JSON (NaN is not valid JSON"),
    ('{"x": Infinity}', "Value is not valid JSON (Infinity is not valid JSON"),
    ("null", "Value must not be null; delete the key instead"),
    ("", "Enter a JSON value"),
])
def test_a_bad_value_is_refused_beside_the_field_and_kept(editor, stored_rows, app, value, message):
    response = add(editor, "mykey", value)
    assert response.status_code == 422
    html = response.text
    assert 'aria-describedby="add-value-hint add-value-error"' in html and 'aria-invalid="true"' in html
    error = re.search(r'<p id="add-value-error" class="field-error">([^<]*)</p>', html).group(1)
    assert unescape(error).startswith(message)
    assert f"{value}</textarea>" in unescape(html)  # the user's input is still there
    assert 'value="mykey"' in html
    assert stored_rows() == [] and history_rows(app) == []


def test_a_value_over_the_size_limit_is_refused(make_app, editor_of, stored_rows):
    editor = editor_of(make_app(max_value_bytes=1024))
    big = '"' + "x" * 1100 + '"'
    response = add(editor, "big", big)
    assert response.status_code == 422
    assert "Value is 1102 bytes of JSON; the limit is 1024 bytes" in response.text
    assert f"{big}</textarea>" in unescape(response.text) and stored_rows() == []


def test_a_bad_key_is_refused(editor, stored_rows):
    response = add(editor, "a" * 513, "1")
    assert response.status_code == 422
    assert "Key is 513 characters long; the limit is 512" in response.text
    assert stored_rows() == []


def test_adding_an_existing_key_is_refused_not_overwritten(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", "from the worker")
    response = add(editor, "k", '"from the form"')
    assert response.status_code == 422
    assert "A key named &#39;k&#39; already exists; edit it instead." in response.text
    assert rows(stored_rows)["k"].value == '"from the worker"'


# --- edit -------------------------------------------------------------------------------------


def test_edit_in_place_with_htmx(editor, ti_id, worker_put, stored_rows, app):
    worker_put(ti_id, "checkpoint", {"offset": 1}, utcnow() + timedelta(hours=6))
    # What htmx swaps in place of the row (tests/e2e clicks through it in a browser).
    fragment = editor.get(ti_page_url(action="edit", key="checkpoint"), headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith("<tr") and 'class="editing"' in fragment.text  # pauses the polling
    assert "&#34;offset&#34;: 1" in fragment.text  # the value, pretty-printed for editing
    assert '<option selected value="keep">Keep (in 6 hours)</option>' in fragment.text
    form = Form(fragment.text)
    before = rows(stored_rows)["checkpoint"]

    saved = editor.post(ti_page_url(action="edit", key="checkpoint"), headers=HTMX, data={
        "csrf_token": form.token, "version": form.version(), "value": '{"offset": 2}', "expiration": "keep",
    })
    assert saved.status_code == 200 and "<html" not in saved.text
    assert saved.text.lstrip().startswith("<tr") and "editing" not in saved.text
    assert '{\n  "offset": 2\n}' in shown_values(saved.text) and "Saved." in saved.text
    after = rows(stored_rows)["checkpoint"]
    assert after.value == '{"offset":2}' and after.expires_at == before.expires_at  # expiry kept
    assert after.version == before.version + 1
    change = history_rows(app)[-1]
    assert (change.old_value, change.new_value) == ('{"offset":1}', '{"offset":2}')


def test_edit_the_expiry_to_never_and_to_a_custom_time(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=1))
    form = Form(editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text)
    editor.post(ti_page_url(action="edit", key="k"), headers=HTMX, data={
        "csrf_token": form.token, "version": form.version(), "value": "1", "expiration": "never"})
    assert rows(stored_rows)["k"].expires_at is None

    moment = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    form = Form(editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text)
    response = editor.post(ti_page_url(action="edit", key="k"), headers=HTMX, data={
        "csrf_token": form.token, "version": form.version(), "value": "1", "expiration": "custom",
        "expires_at": moment.strftime("%Y-%m-%dT%H:%M")})
    assert "in 3 days" in response.text or "in 2 days" in response.text
    assert rows(stored_rows)["k"].expires_at == moment


def test_edit_without_javascript_is_a_page_and_a_redirect(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "a/b?c#d", [1])
    page = editor.get(ti_page_url(action="edit", key="a/b?c#d"))
    assert page.status_code == 200 and "<html" in page.text
    field_id = re.search(r'<label for="(edit-\d+-value)">Value</label>', page.text).group(1)
    assert re.search(f'<textarea [^>]*id="{field_id}"', page.text)  # the label names the Value field
    assert '<button type="submit" class="primary">Save</button>' in page.text
    form = Form(page.text)
    response = editor.post(ti_page_url(action="edit", key="a/b?c#d"), data={
        "csrf_token": form.token, "version": form.version(), "value": "[1, 2]", "expiration": "never"})
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    assert rows(stored_rows)["a/b?c#d"].value == "[1,2]"


def test_a_bad_value_in_the_edit_form_is_refused_and_kept(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1)
    form = Form(editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text)
    data = {"csrf_token": form.token, "version": form.version(), "value": "{oops", "expiration": "keep"}
    fragment = editor.post(ti_page_url(action="edit", key="k"), headers=HTMX, data=data)
    assert fragment.status_code == 422  # htmx is configured to swap 422: the form comes back with its error
    assert 'class="field-error">Value is not valid JSON' in fragment.text and "{oops</textarea>" in fragment.text
    assert editor.post(ti_page_url(action="edit", key="k"), data=data).status_code == 422
    assert rows(stored_rows)["k"].value == "1"


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_edit_is_refused_and_shows_the_current_value(editor, ti_id, worker_put, stored_rows, app, htmx):
    worker_put(ti_id, "k", "first")
    headers = HTMX if htmx else {}
    form = Form(editor.get(ti_page_url(action="edit", key="k"), headers=headers).text)
    worker_put(ti_id, "k", {"written": "by the worker"})  # meanwhile

    data = {"csrf_token": form.token, "version": form.version(), "value": '"mine"', "expiration": "keep"}
    response = editor.post(ti_page_url(action="edit", key="k"), headers=headers, data=data)
    assert response.status_code == 409
    assert "A worker changed this key since you opened the form; nothing was changed." in response.text
    assert "&#34;written&#34;: &#34;by the worker&#34;" in response.text  # the current value
    assert "\n&#34;mine&#34;</textarea>" in response.text  # the user's input is kept
    assert rows(stored_rows)["k"].value == '{"written":"by the worker"}'
    assert history_rows(app) == []

    # The form now carries the current version: saving again replaces it, knowingly.
    again = Form(response.text)
    assert again.version() != form.version()
    data.update(version=again.version(), csrf_token=again.token)
    assert editor.post(ti_page_url(action="edit", key="k"), headers=headers, data=data).status_code in (200, 303)
    assert rows(stored_rows)["k"].value == '"mine"'


def test_editing_a_key_deleted_meanwhile_is_refused(editor, ti_id, worker_auth, stored_rows, worker_put):
    worker_put(ti_id, "k", 1)
    form = Form(editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text)
    editor.delete(key_url(ti_id, "k"), headers=worker_auth(ti_id))
    response = editor.post(ti_page_url(action="edit", key="k"), headers=HTMX, data={
        "csrf_token": form.token, "version": form.version(), "value": "2", "expiration": "keep"})
    assert "This key was deleted or has expired since you opened the form" in response.text
    assert stored_rows() == []
    assert editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text == ""  # its row goes
    assert editor.get(ti_page_url(action="edit", key="k")).status_code == 404


def test_cancel_puts_the_row_back(editor, ti_id, worker_put):
    worker_put(ti_id, "k", 1)
    fragment = editor.get(ti_page_url(action="edit", key="k"), headers=HTMX).text
    assert re.search(f'<a href="{PAGE}"[^>]*>Cancel</a>', fragment)  # without JavaScript: back to the page
    row = editor.get(ti_page_url(action="row", key="k"), headers=HTMX)  # with htmx: the row comes back
    assert row.text.lstrip().startswith("<tr") and "<code>k</code>" in row.text


# --- extend -----------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_extend_by_a_day_from_the_current_expiry(editor, ti_id, worker_put, stored_rows, app, htmx):
    worker_put(ti_id, "k", {"v": 1}, utcnow() + timedelta(hours=2))
    before = rows(stored_rows)["k"]
    form = Form(editor.get(PAGE).text)  # the row's Extend form (tests/e2e clicks "Extend k by 1 day")
    response = editor.post(ti_page_url(action="extend", key="k"), headers=HTMX if htmx else {},
                           data={"csrf_token": form.token, "version": form.version(), "by": "1d"})
    if htmx:
        assert response.status_code == 200 and "Extended by 1 day." in response.text
        assert (before.expires_at + timedelta(days=1)).strftime("%Y-%m-%d %H:%M") in response.text
    else:
        assert response.status_code == 303
    after = rows(stored_rows)["k"]
    assert after.expires_at - before.expires_at == timedelta(days=1) and after.value == before.value
    assert history_rows(app)[-1].action == "extend"


def test_extend_is_refused_when_the_key_changed(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=2))
    form = Form(editor.get(PAGE).text)
    worker_put(ti_id, "k", 2, utcnow() + timedelta(hours=3))
    expires = rows(stored_rows)["k"].expires_at
    response = editor.post(ti_page_url(action="extend", key="k"), headers=HTMX,
                           data={"csrf_token": form.token, "version": form.version(), "by": "7d"})
    assert "A worker changed this key" in response.text and '<pre class="conflict">2</pre>' in response.text
    assert rows(stored_rows)["k"].expires_at == expires


def test_keys_that_never_expire_have_no_extend_buttons(editor, ti_id, worker_put):
    worker_put(ti_id, "forever", 1)
    worker_put(ti_id, "expiring", 2, utcnow() + timedelta(hours=1))
    html = editor.get(PAGE).text
    assert 'aria-label="Extend expiring by 1 hour"' in html and "Extend forever by" not in html


# --- delete -----------------------------------------------------------------------------------


def test_delete_with_a_confirmation_page(editor, ti_id, worker_put, stored_rows, app):
    worker_put(ti_id, "k", {"big": "value"})
    confirm = editor.get(ti_page_url(action="delete", key="k"))
    assert confirm.status_code == 200 and '<button type="submit" class="danger">Delete</button>' in confirm.text
    assert stored_rows() != []  # asking is not deleting
    form = Form(confirm.text)
    response = editor.post(ti_page_url(action="delete", key="k"),
                           data={"csrf_token": form.token, "version": form.version()})
    assert response.status_code == 303 and stored_rows() == []
    assert "Deleted key &#39;k&#39;." in editor.get(PAGE).text
    change = history_rows(app)[-1]
    assert (change.action, change.old_value, change.new_value) == ("delete", '{"big":"value"}', None)


def test_delete_inline_with_htmx(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1)
    fragment = editor.get(ti_page_url(action="delete", key="k"), headers=HTMX).text
    assert fragment.lstrip().startswith("<tr") and "Delete key <code>k</code>?" in fragment
    assert f'hx-post="{PAGE}/delete?key=k"' in fragment
    form = Form(fragment)
    response = editor.post(ti_page_url(action="delete", key="k"), headers=HTMX,
                           data={"csrf_token": form.token, "version": form.version()})
    assert response.status_code == 200 and response.text.lstrip().startswith('<tr class="deleted">')
    assert ">Undo</button>" in response.text  # the row becomes a notice offering Undo (tests/test_ui_in_sync.py)
    assert stored_rows() == []


def test_a_stale_delete_is_refused_and_shows_the_current_value(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1)
    form = Form(editor.get(ti_page_url(action="delete", key="k")).text)
    worker_put(ti_id, "k", "newer")
    response = editor.post(ti_page_url(action="delete", key="k"),
                           data={"csrf_token": form.token, "version": form.version()})
    assert response.status_code == 409
    assert "A worker changed this key" in response.text and "&#34;newer&#34;" in response.text
    assert rows(stored_rows)["k"].value == '"newer"'


# --- clear ------------------------------------------------------------------------------------


def test_clear_this_map_index_or_every_one(login_as, make_run, worker_put, stored_rows, app):
    made = make_run(tasks=(("copy", [0, 1]),))
    editor = login_as("editor")
    for index in (0, 1):
        worker_put(made[("copy", index)], f"k{index}", index)
    base = "/dags/dag/runs/run_1/tasks/copy"

    confirm = editor.get(f"{base}/clear?map_index=1")
    assert "will start over" in confirm.text and '<button type="submit" class="danger">Clear</button>' in confirm.text
    response = editor.post(f"{base}/clear?map_index=1", data={"csrf_token": Form(confirm.text).token})
    assert response.status_code == 303 and response.headers["Location"] == f"{base}?map_index=1"
    assert [row.key for row in stored_rows()] == ["k0"]
    assert "Cleared 1 key of this task instance." in editor.get(response.headers["Location"]).text

    worker_put(made[("copy", 1)], "k1", 1)
    confirm = editor.get(f"{base}/clear?map_index=1&all_map_indices=1")
    assert "every map index" in confirm.text
    editor.post(f"{base}/clear?map_index=1", data={"csrf_token": Form(confirm.text).token, "all_map_indices": "1"})
    assert stored_rows() == []
    assert [(c.action, c.map_index, c.key) for c in history_rows(app)] == \
        [("clear", 1, "k1"), ("clear", 0, "k0"), ("clear", 1, "k1")]


# --- roles and CSRF ---------------------------------------------------------------------------

EDIT_ROUTES = [
    ("get", "edit", {}), ("get", "row", {}), ("get", "delete", {}), ("get", "clear", {}),
    ("post", "", {"key": "new", "value": "1", "expiration": "never"}),
    ("post", "edit", {"value": "2", "expiration": "never"}), ("post", "extend", {"by": "1d"}),
    ("post", "delete", {}), ("post", "clear", {}),
]


@pytest.mark.parametrize("method, action, data", EDIT_ROUTES)
def test_viewers_are_refused_every_edit_route(login_as, ti_id, worker_put, stored_rows, app, method, action, data):
    viewer = login_as("viewer")
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=1))
    before = stored_rows()
    page = viewer.get(PAGE).text
    target = ti_page_url(action=action, key=None if action in ("", "clear") else "k")
    if method == "get":
        response = viewer.get(target, headers=HTMX)
    else:
        with app.app_context():
            from webapp import runs, store
            etag = store.get_entry(store.scope_of(runs.get_task_instance("dag", "run_1", "task")), "k").etag
        response = viewer.post(target, data={"csrf_token": csrf_token(page), "version": etag, **data})
    assert response.status_code == 403
    assert stored_rows() == before and history_rows(app) == []


@pytest.mark.parametrize("csrf", [None, "wrong-token"])
@pytest.mark.parametrize("action, data", [
    ("", {"key": "new", "value": "1", "expiration": "never"}), ("edit", {"value": "2", "expiration": "never"}),
    ("extend", {"by": "1d"}), ("delete", {}), ("clear", {}),
])
def test_posts_without_a_valid_csrf_token_are_refused(editor, ti_id, worker_put, stored_rows, app, csrf, action, data):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=1))
    before = stored_rows()
    version = Form(editor.get(PAGE).text).version()
    if csrf is not None:
        data = {**data, "csrf_token": csrf}
    target = ti_page_url(action=action, key=None if action in ("", "clear") else "k")
    response = editor.post(target, data={"version": version, **data})
    assert response.status_code == 400 and "CSRF" in response.text
    # htmx sends the token as a header; a wrong one is refused the same way.
    response = editor.post(target, data={"version": version, **data}, headers={**HTMX, "X-CSRFToken": "nope"})
    assert response.status_code == 400
    assert stored_rows() == before and history_rows(app) == []


def test_htmx_posts_may_send_the_token_as_a_header(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "k", 1)
    page = editor.get(PAGE).text
    headers = json.loads(re.search(r"<body[^>]* hx-headers='([^']+)'", page).group(1))  # what htmx sends
    version = Form(editor.get(ti_page_url(action="delete", key="k"), headers=HTMX).text).version()
    response = editor.post(ti_page_url(action="delete", key="k"), headers={**HTMX, **headers},
                           data={"version": version})
    assert response.status_code == 200 and stored_rows() == []


# --- history ----------------------------------------------------------------------------------


def test_the_task_instance_page_shows_the_history(editor, ti_id):
    add(editor, "k", '{"n": 1}', expiration="never")
    form = Form(editor.get(ti_page_url(action="edit", key="k")).text)
    editor.post(ti_page_url(action="edit", key="k"), data={"csrf_token": form.token, "version": form.version(),
                                                           "value": '{"n": 2}', "expiration": "default"})
    html = editor.get(PAGE).text
    history = html[html.index('id="history-heading"'):]
    table = table_rows(history)
    assert table[0] == ["When", "Who", "Action", "Key", "Value (old → new)", "Expiry (old → new)"]
    newest, oldest = table[1], table[2]
    assert newest[1:4] == ["editor", "value and expiry changed", "k"] and newest[4] == '{"n":1} → {"n":2}'
    assert newest[5].startswith("never → ") and newest[5].endswith("UTC")
    assert oldest[2] == "created" and oldest[4] == '— → {"n":1}' and oldest[5] == "— → never"
    assert re.search(r"UTC (a moment|a second|\d+ seconds) ago$", newest[0]), newest[0]


def test_a_viewer_sees_the_history_too(login_as, ti_id, app, client):
    editor = login_as("editor")
    add(editor, "k", "1")
    client.post("/logout", data={"csrf_token": token(client)})
    viewer = login_as("viewer")
    assert "No changes through the UI" not in viewer.get(PAGE).text
    assert table_rows(viewer.get(PAGE).text.split('id="history-heading"')[1])[1][1] == "editor"


# --- search -----------------------------------------------------------------------------------


def test_search_finds_substrings_across_dags_ignoring_case(login_as, make_run, worker_put):
    first = make_run("etl", "run_1", tasks=(("submit", None), ("copy", [0, 1])))
    second = make_run("reports", "run_9")
    viewer = login_as("viewer")
    worker_put(first["submit"], "spark/job_id", 1)
    worker_put(first[("copy", 1)], "SPARK_checkpoint", 2)
    worker_put(second["task"], "my-spark-job", 3)
    worker_put(second["task"], "unrelated", 4)
    worker_put(second["task"], "spark-expired", 5, utcnow() - timedelta(minutes=1))

    html = viewer.get("/search?q=spark").text
    found = table_rows(html)
    assert found[0] == ["DAG", "Run", "Task", "Map index", "Key", "Value", "Updated", "Expires"]
    assert [row[:5] for row in found[1:]] == [  # newest key first
        ["reports", "run_9", "task", "—", "my-spark-job"],
        ["etl", "run_1", "copy", "1", "SPARK_checkpoint"],
        ["etl", "run_1", "submit", "—", "spark/job_id"],
    ]
    assert "3 keys found" in html
    assert 'href="/dags/etl/runs/run_1/tasks/copy?map_index=1"' in html
    assert 'href="/dags/reports/runs/run_9/tasks/task"' in html

    in_dag = table_rows(viewer.get("/search?q=SPARK&dag_id=reports").text)
    assert [row[4] for row in in_dag[1:]] == ["my-spark-job"]


def test_search_treats_wildcards_literally(login_as, ti_id, worker_put):
    viewer = login_as("viewer")
    for key in ("100%", "1000", "a_b", "axb", "back\\slash", "backslash", "x/y", "xzy"):
        worker_put(ti_id, key, 1)

    def keys(text):
        return [row[4] for row in table_rows(viewer.get(f"/search?q={quote(text)}").text)[1:]]

    assert keys("%") == ["100%"]
    assert keys("_") == ["a_b"]
    assert keys("\\") == ["back\\slash"]
    assert keys("/") == ["x/y"]
    assert keys("0%") == ["100%"]
    assert keys("00%") == ["100%"]  # 3 characters and more go through the trigram index first
    assert keys("a_b") == ["a_b"]


def test_search_follows_keys_through_writes_overwrites_deletes_clears_and_run_deletion(
        login_as, make_run, worker_auth, admin_auth, worker_put):
    """On SQLite and PostgreSQL an index narrows the search down (migration 0006); what it
    finds must follow every way a key comes and goes."""
    ids = make_run("etl", "run_1", tasks=(("a", None), ("b", None)))
    viewer = login_as("viewer")

    def found(text):
        response = viewer.get(f"/search?q={quote(text)}")
        assert response.status_code == 200, text
        html = response.text
        if "No live key contains" in html:
            return []
        return [(row[2], row[4]) for row in table_rows(html)[1:]]

    def worker_delete(ti, key=None):
        assert viewer.delete(key_url(ti, key), headers=worker_auth(ti)).status_code == 204

    worker_put(ids["a"], 'a "Checkpoint"', 1)
    worker_put(ids["a"], "ÉTAT-checkpoint", 2)
    worker_put(ids["b"], "CHECKPOINT-b", 3)
    everything = [("b", "CHECKPOINT-b"), ("a", "ÉTAT-checkpoint"), ("a", 'a "Checkpoint"')]  # newest first
    assert found("checkpoint") == everything
    assert found('"check') == [("a", 'a "Checkpoint"')]  # a double quote is just a character
    assert found("t-c") == [("a", "ÉTAT-checkpoint")]
    assert found("ck") == everything  # shorter than a trigram: read every key

    worker_put(ids["a"], 'a "Checkpoint"', 4)  # an overwrite: found once, in its place
    assert found("checkpoint") == everything
    worker_delete(ids["b"], "CHECKPOINT-b")
    assert found("checkpoint") == everything[1:]
    worker_delete(ids["a"])
    assert found("checkpoint") == []

    worker_put(ids["b"], "checkpoint-again", 5)
    assert found("checkpoint") == [("b", "checkpoint-again")]
    assert viewer.delete("/api/v2/dags/etl/dagRuns/run_1", headers=admin_auth("admin")).status_code == 204
    assert found("checkpoint") == []


def test_search_page_is_linked_from_every_page_and_pages(login_as, ti_id, worker_put, monkeypatch):
    from webapp.ui import search

    viewer = login_as("viewer")
    for number in range(3):
        worker_put(ti_id, f"key{number}", number)
    for path in ("/", "/dags/dag", PAGE):
        assert '<a href="/search">Search keys</a>' in viewer.get(path).text
    empty = viewer.get("/search")
    assert empty.status_code == 200 and '<label for="q">Key contains</label>' in empty.text
    assert "<table" not in empty.text
    monkeypatch.setattr(search, "RESULTS_PER_PAGE", 2)
    first = viewer.get("/search?q=key").text
    assert [row[4] for row in table_rows(first)[1:]] == ["key2", "key1"]
    assert "3 keys found" in first  # counted, since the first page is full
    second = viewer.get("/search?q=key&offset=2").text
    assert [row[4] for row in table_rows(second)[1:]] == ["key0"]
    assert "No live key contains “nothing”." in viewer.get("/search?q=nothing").text


@pytest.mark.parametrize("expiration", ["default", "never", "1d"])
def test_a_time_typed_with_another_expiration_is_refused_not_ignored(editor, stored_rows, expiration):
    response = add(editor, "k", "1", expiration=expiration, expires_at="2099-05-05 10:00:00")
    assert response.status_code == 422
    assert ('<p id="add-expires-at-error" class="field-error">Choose Custom as the Expiration to use this time, '
            "or clear it</p>") in response.text
    assert stored_rows() == []


@pytest.mark.parametrize("typed", ["2099-05-05 10:11:12", "2099-05-05T10:11:12", "2099-05-05 10:11:12 UTC",
                                   "2099-05-05T10:11:12Z"])
def test_a_custom_expiry_is_24_hour_utc_and_keeps_its_seconds(editor, stored_rows, typed):
    assert add(editor, "k", "1", expiration="custom", expires_at=typed).status_code == 303
    assert rows(stored_rows)["k"].expires_at == datetime(2099, 5, 5, 10, 11, 12, tzinfo=UTC)


@pytest.mark.parametrize("choice, expected", [
    ("1h", timedelta(hours=1)), ("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("eod", None)])
def test_quick_expiry_choices(editor, stored_rows, choice, expected):
    before = utcnow()
    assert add(editor, "k", "1", expiration=choice).status_code == 303
    stored = rows(stored_rows)["k"].expires_at
    if expected is None:  # the last second of the day the key was added (UTC)
        end_of_day = before.replace(hour=23, minute=59, second=59, microsecond=0)
        if utcnow() < end_of_day:  # not added across midnight
            assert stored == end_of_day
    else:
        assert before + expected <= stored <= utcnow() + expected


def test_the_form_says_how_to_type_a_time_and_offers_the_quick_choices(editor, ti_id):
    html = editor.get(ti_page_url()).text
    assert 'placeholder="2026-12-31 23:59:59"' in html and 'type="datetime-local"' not in html
    for label in ("In 1 hour", "In 1 day", "In 7 days", "End of today (23:59:59 UTC)", "Custom (Expires at)"):
        assert f">{label}</option>" in html
