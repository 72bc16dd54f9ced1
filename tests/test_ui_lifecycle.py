"""A task instance's life on its admin UI page: its tries, which try last wrote each key, and the
keys set aside by a re-expansion over a changed list (delete, move to a map index), through
Flask's test client with CSRF on: full-page posts with a redirect, and htmx fragments. Tries and
set-aside keys are made through the admin API, as a scheduler makes them."""

from __future__ import annotations

import re

import pytest

from support import csrf_token, table_rows, ti_page_url

API = "/api/v2"
HTMX = {"HX-Request": "true"}
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (a moment|a second|\d+ seconds) ago"
COPY = "/dags/dag/runs/run_1/tasks/copy"  # the mapped task's pages: ?map_index=N


@pytest.fixture
def admin(client, admin_auth):
    """The scheduler's admin API, through the test client with an admin API key:
    ``admin("post", path, json)`` answers the JSON, having checked the status is 2xx."""
    headers = admin_auth()

    def _call(method: str, path: str, json=None):
        response = client.open(API + path, method=method.upper(), headers=headers, json=json)
        assert response.status_code < 300, response.text
        return response.json

    return _call


def create_run(admin, *tasks) -> dict:
    """{(task_id, map_index): ti id} of a new run ``run_1`` of DAG ``dag``."""
    made = admin("post", "/dags/dag/dagRuns", {"dag_run_id": "run_1", "tasks": list(tasks)})
    return {(ti["task_id"], ti["map_index"]): ti["id"] for ti in made["task_instances"]}


def set_state(admin, state: str, task: str = "task", map_index: int = -1) -> dict:
    return admin("patch", f"/dags/dag/dagRuns/run_1/taskInstances/{task}?map_index={map_index}", {"state": state})


def section(html: str, heading_id: str) -> str:
    """One section of a page (from its heading to its end), or "" when the page has none."""
    start = html.find(f'id="{heading_id}"')
    return "" if start == -1 else html[start:html.index("</section>", start)]


def key_table(html: str) -> list[list[str]]:
    """The rows of a page's key table, header first."""
    start = html.index('<table class="keys sized"')
    rows = table_rows(html[start:html.index("</table>", start)])
    # A value cell ends with the value's type and size ("object · 11 B"): left out here.
    return [[VALUE_FACTS.sub("", cell) for cell in row] for row in rows]


VALUE_FACTS = re.compile(r" (object|array|string|number|boolean|null) · [\d.]+ (B|kB|MB)$")


def history(html: str) -> list[list[str]]:
    """The history table's rows (When, Who, Action, Key, ...), newest first, without the header."""
    return table_rows(section(html, "history-heading"))[1:]


@pytest.fixture
def set_aside(admin, worker_put):
    """A mapped task ``copy`` over items a, b, c, each index's worker (in try 1) having written a
    checkpoint ``ckpt`` (the item's name) and index 1's also ``extra``; then the list changes to
    c, a, d: a's and c's checkpoints follow their item, b's is set aside at index 1 (whose item is
    now a), with ``extra``. Returns {map_index: ti id}."""
    made = create_run(admin, {"task_id": "copy", "map_indexes": [0, 1, 2], "map_keys": ["a", "b", "c"]})
    ids = {index: made[("copy", index)] for index in (0, 1, 2)}
    for index, item in enumerate("abc"):
        set_state(admin, "running", "copy", index)
        worker_put(ids[index], "ckpt", item)
    worker_put(ids[1], "extra", {"rows": 12})
    expanded = admin("post", "/dags/dag/dagRuns/run_1/taskInstances/copy/expand",
                     {"map_indexes": [0, 1, 2], "map_keys": ["c", "a", "d"]})
    assert expanded["keys_set_aside"] == 2
    return ids


def set_aside_rows(html: str) -> list[list[str]]:
    return table_rows(section(html, "set-aside-heading"))


def move(client, key: str, to, map_index: int = 1, headers=None):
    page = client.get(f"{COPY}?map_index={map_index}").text
    return client.post(f"{COPY}/set-aside/move?map_index={map_index}&key={key}", headers=headers or {},
                       data={"csrf_token": csrf_token(page), "to_map_index": to})


# --- tries ------------------------------------------------------------------------------------


def test_the_tries_table_lists_every_try_oldest_first_and_marks_the_current_one(login_as, admin):
    create_run(admin, {"task_id": "task"})
    viewer = login_as("viewer")
    assert section(viewer.get(ti_page_url()).text, "tries-heading") == ""  # not run yet: no tries

    set_state(admin, "running")
    only = table_rows(section(viewer.get(ti_page_url()).text, "tries-heading"))
    assert only[0] == ["Try", "State", "Started", "Ended"]
    assert only[1][:2] == ["1 current", "running"] and only[1][3] == "—"

    set_state(admin, "up_for_retry")
    set_state(admin, "running")
    tries = table_rows(section(viewer.get(ti_page_url()).text, "tries-heading"))
    assert [row[:2] for row in tries[1:]] == [["1", "up for retry"], ["2 current", "running"]]
    assert re.fullmatch(TIME, tries[1][2]) and re.fullmatch(TIME, tries[1][3])  # started and ended
    assert re.fullmatch(TIME, tries[2][2]) and tries[2][3] == "—"  # still running


def test_each_key_says_which_try_last_wrote_it(login_as, admin, worker_put):
    first = create_run(admin, {"task_id": "task"})[("task", -1)]
    set_state(admin, "running")
    worker_put(first, "checkpoint", 1)
    worker_put(first, "job_id", "application_1")
    set_state(admin, "failed")
    second = set_state(admin, "running")["id"]
    worker_put(second, "checkpoint", 2)
    admin("put", "/dags/dag/dagRuns/run_1/taskInstances/task/state-store/note", {"value": "by hand"})

    rows = key_table(login_as("viewer").get(ti_page_url()).text)
    assert rows[0] == ["Key ↑", "Value", "Updated", "Expires"]  # no column added: a line under the time
    updated = {row[0]: row[2] for row in rows[1:]}
    assert re.fullmatch(TIME + " by try 2", updated["checkpoint"]), updated
    assert re.fullmatch(TIME + " by try 1", updated["job_id"])
    assert re.fullmatch(TIME + " by a person or tool", updated["note"])


def test_asset_keys_say_nothing_of_tries(login_as, admin):
    asset = admin("post", "/assets", {"name": "orders", "uri": "s3://lake/orders"})
    admin("put", f"/assets/{asset['id']}/state-store/watermark", {"value": "2026-01-01"})
    html = login_as("viewer").get(f"/assets/{asset['id']}").text
    [_header, row] = key_table(html)
    assert re.fullmatch(TIME, row[2])
    assert "by try" not in html and "person or tool" not in html and "Tries" not in html
    assert "Set aside" not in html


# --- keys set aside -----------------------------------------------------------------------------


def test_keys_set_aside_are_listed_with_their_map_key(login_as, set_aside):
    viewer = login_as("viewer")
    html = viewer.get(f"{COPY}?map_index=1").text
    assert "<h2 id=\"set-aside-heading\">Set aside (from a different input)</h2>" in html
    rows = set_aside_rows(html)
    assert rows[0] == ["Key", "Map key", "Value", "Updated"]
    assert [row[:3] for row in rows[1:]] == [["ckpt", "b", '"b"'], ["extra", "b", '{ "rows": 12 }']]
    assert all(re.fullmatch(TIME + " by try 1", row[3]) for row in rows[1:])
    # Index 1's own keys: "a"'s checkpoint, moved here from index 0; never b's.
    assert [row[:2] for row in key_table(html)[1:]] == [["ckpt", '"a"']]
    # The other indexes have nothing set aside: no section.
    for index in (0, 2):
        assert section(viewer.get(f"{COPY}?map_index={index}").text, "set-aside-heading") == ""


def test_an_editor_deletes_a_key_set_aside_after_a_confirmation_page(login_as, set_aside):
    editor = login_as("editor")
    page = editor.get(f"{COPY}?map_index=1").text
    assert set_aside_rows(page)[0] == ["Key", "Map key", "Value", "Updated", "Actions"]
    confirm = editor.get(f"{COPY}/set-aside/delete?map_index=1&key=ckpt")
    assert confirm.status_code == 200 and "<html" in confirm.text
    assert "Delete key <code>ckpt</code>, set aside from a different input (map key <code>b</code>)?" in confirm.text
    assert '<button type="submit" class="danger">Delete</button>' in confirm.text
    assert [row[0] for row in set_aside_rows(editor.get(f"{COPY}?map_index=1").text)[1:]] == ["ckpt", "extra"]

    response = editor.post(f"{COPY}/set-aside/delete?map_index=1&key=ckpt",
                           data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 303 and response.headers["Location"] == f"{COPY}?map_index=1"
    html = editor.get(response.headers["Location"]).text
    assert "Deleted set-aside key &#39;ckpt&#39;." in html
    assert [row[0] for row in set_aside_rows(html)[1:]] == ["extra"]
    assert [row[1:4] for row in history(html)] == [["editor", "deleted", "ckpt"]]


def test_an_editor_deletes_a_key_set_aside_inline_with_htmx(login_as, set_aside):
    editor = login_as("editor")
    confirm = editor.get(f"{COPY}/set-aside/delete?map_index=1&key=ckpt", headers=HTMX)
    assert confirm.status_code == 200 and "HX-Request" in confirm.headers["Vary"]
    assert confirm.text.lstrip().startswith('<tr class="editing">') and "<html" not in confirm.text
    assert f'hx-post="{COPY}/set-aside/delete?key=ckpt&amp;map_index=1"' in confirm.text
    # Cancel puts the row back.
    row = editor.get(f"{COPY}/set-aside/row?map_index=1&key=ckpt", headers=HTMX)
    assert [cells[:3] for cells in table_rows(row.text)] == [["ckpt", "b", '"b"']]

    response = editor.post(f"{COPY}/set-aside/delete?map_index=1&key=ckpt", headers=HTMX,
                           data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 200 and response.text == ""  # the row is swapped for nothing
    assert "HX-Request" in response.headers["Vary"]
    html = editor.get(f"{COPY}?map_index=1").text
    assert [row[0] for row in set_aside_rows(html)[1:]] == ["extra"]
    assert [row[1:4] for row in history(html)] == [["editor", "deleted", "ckpt"]]
    # Asked again (another tab), it is gone: the row goes.
    again = editor.post(f"{COPY}/set-aside/delete?map_index=1&key=ckpt", headers=HTMX,
                        data={"csrf_token": csrf_token(confirm.text)})
    assert again.status_code == 200 and again.text == ""


def test_an_editor_moves_a_key_set_aside_to_another_map_index(login_as, set_aside):
    editor = login_as("editor")
    page = editor.get(f"{COPY}?map_index=1").text
    assert '<label for="move-' in page and ">Move to map index</label>" in page and ">Move</button>" in page

    response = move(editor, "ckpt", 2)
    assert response.status_code == 303 and response.headers["Location"] == f"{COPY}?map_index=1"
    html = editor.get(response.headers["Location"]).text
    assert "Moved key &#39;ckpt&#39; to map index 2." in html
    assert [row[0] for row in set_aside_rows(html)[1:]] == ["extra"]
    target = editor.get(f"{COPY}?map_index=2").text
    assert [row[:2] for row in key_table(target)[1:]] == [["ckpt", '"b"']]  # index 2's item continues b's work
    assert [row[1:4] for row in history(target)] == [["editor", "moved", "ckpt"]]


def test_an_editor_moves_a_key_set_aside_with_htmx_and_adopts_one(login_as, set_aside):
    editor = login_as("editor")
    response = move(editor, "ckpt", 2, headers=HTMX)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert response.text.lstrip().startswith('<tr class="done">') and "<html" not in response.text
    assert "Moved key &#39;ckpt&#39; to map index 2." in response.text
    assert f'<a href="{COPY}?map_index=2">Open map index 2</a>' in response.text

    adopted = move(editor, "extra", 1, headers=HTMX)  # this task instance's own index: adopt it
    assert adopted.status_code == 200 and "Moved key &#39;extra&#39; to this task instance." in adopted.text
    html = editor.get(f"{COPY}?map_index=1").text
    assert section(html, "set-aside-heading") == ""  # nothing set aside any more
    assert [row[:2] for row in key_table(html)[1:]] == [["ckpt", '"a"'], ["extra", '{ "rows": 12 }']]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("to, status, message", [
    (0, 409, "Map index 0 already has a key named &#39;ckpt&#39;; nothing was moved."),
    (7, 422, "Task &#39;copy&#39; has no map index 7 in this run; nothing was moved."),
    ("two", 422, "Not a valid integer value."),
    (-1, 422, "Enter a map index between 0 and 2147483647"),
], ids=["occupied", "no such map index", "not a number", "negative"])
def test_a_move_is_refused_beside_the_field(login_as, set_aside, table_contents, htmx, to, status, message):
    editor = login_as("editor")
    before = table_contents()
    response = move(editor, "ckpt", to, headers=HTMX if htmx else None)
    assert response.status_code == status
    # The key's row alone to htmx; without JavaScript, a page of its own with the form again.
    assert ("<html" in response.text) is not htmx
    assert ("<h1>Move key set aside <small>copy [1] · run_1</small></h1>" in response.text) is not htmx
    error = re.search(r'<p id="(move-[\w-]+)-error" class="field-error">([^<]*)</p>', response.text)
    assert error and error.group(2) == message
    field = re.search(rf'<input[^>]* id="{error.group(1)}"[^>]*>', response.text).group(0)
    assert 'aria-invalid="true"' in field and f'value="{to}"' in field  # what was typed stays
    assert table_contents() == before


def test_viewers_see_keys_set_aside_without_buttons_and_are_refused_every_route(login_as, set_aside,
                                                                                 table_contents):
    viewer = login_as("viewer")
    page = viewer.get(f"{COPY}?map_index=1").text
    listed = section(page, "set-aside-heading")
    assert "ckpt" in listed and ">Delete<" not in listed and "Move" not in listed and "Actions" not in listed
    before = table_contents()
    token = csrf_token(page)
    for response in (viewer.get(f"{COPY}/set-aside/delete?map_index=1&key=ckpt"),
                     viewer.get(f"{COPY}/set-aside/delete?map_index=1&key=ckpt", headers=HTMX),
                     viewer.get(f"{COPY}/set-aside/row?map_index=1&key=ckpt", headers=HTMX),
                     viewer.post(f"{COPY}/set-aside/delete?map_index=1&key=ckpt", data={"csrf_token": token}),
                     viewer.post(f"{COPY}/set-aside/move?map_index=1&key=ckpt",
                                 data={"csrf_token": token, "to_map_index": 2}, headers=HTMX)):
        assert response.status_code == 403
    assert table_contents() == before


def test_set_aside_posts_without_a_csrf_token_are_refused(login_as, set_aside, table_contents):
    editor = login_as("editor")
    before = table_contents()
    assert editor.post(f"{COPY}/set-aside/delete?map_index=1&key=ckpt").status_code == 400
    assert editor.post(f"{COPY}/set-aside/move?map_index=1&key=ckpt", data={"to_map_index": 2}).status_code == 400
    assert table_contents() == before


def test_asset_pages_have_no_set_aside_routes(login_as, admin):
    asset = admin("post", "/assets", {"name": "orders", "uri": "s3://lake/orders"})
    editor = login_as("editor")
    assert editor.get(f"/assets/{asset['id']}/set-aside/delete?key=k").status_code == 404


def test_a_mapped_task_instance_links_the_map_indexes_beside_it(login_as, make_run):
    make_run(tasks=(("copy", [0, 1, 3]), ("task", None)))
    viewer = login_as("viewer")

    def steps(map_index: int | None) -> dict[str, str]:
        html = viewer.get(ti_page_url(task_id="copy" if map_index is not None else "task", map_index=map_index)).text
        return dict(re.findall(r'<a rel="(prev|next)" href="([^"]+)"', html))

    assert steps(0) == {"next": "/dags/dag/runs/run_1/tasks/copy?map_index=1"}
    assert steps(1) == {"prev": "/dags/dag/runs/run_1/tasks/copy?map_index=0",
                        "next": "/dags/dag/runs/run_1/tasks/copy?map_index=3"}  # 2 does not exist: skipped
    assert steps(3) == {"prev": "/dags/dag/runs/run_1/tasks/copy?map_index=1"}
    assert steps(None) == {}  # not mapped
