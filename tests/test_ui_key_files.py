"""Export a task instance's (or an asset's) keys as a JSON file and import it: round trip,
all or nothing, existing keys refused unless replaced, every problem named where it is."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from support import csrf_token, ti_page_url
from webapp.models import utcnow

SOURCE = ti_page_url()
TARGET = ti_page_url(task_id="copy")


@pytest.fixture
def two_tis(make_run):
    return make_run(tasks=(("task", None), ("copy", None)))


@pytest.fixture
def editor(login_as, two_tis):
    return login_as("editor")


def upload(client, page: str, document, replace: bool = False):
    token = csrf_token(client.get(page).text)
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    data = {"csrf_token": token, "file": (io.BytesIO(raw), "keys.json")}
    if replace:
        data["replace"] = "y"
    return client.post(page.replace("?", "/import?", 1) if "?" in page else page + "/import", data=data,
                       content_type="multipart/form-data")


def stored(stored_rows, task_id: str) -> dict:
    return {row.key: (row.value, row.expires_at) for row in stored_rows() if row.task_id == task_id}


def test_export_then_import_copies_keys_values_and_expiry(editor, two_tis, worker_put, stored_rows, app):
    expiry = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    worker_put(two_tis["task"], "job", {"id": "j-1", "done": [1, 2]}, expiry)
    worker_put(two_tis["task"], "note", "ünïcode")
    worker_put(two_tis["task"], "gone", 1, utcnow() - timedelta(seconds=1))  # expired: not exported

    exported = editor.get(SOURCE + "/export")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert exported.headers["Content-Disposition"] == "attachment; filename=dag_run_1_task.keys.json"
    document = exported.get_json()
    assert document["of"] == {"kind": "task", "dag_id": "dag", "run_id": "run_1", "task_id": "task", "map_index": -1}
    assert [entry["key"] for entry in document["keys"]] == ["job", "note"]

    response = upload(editor, TARGET, document)
    assert response.status_code == 303, response.text
    assert "Imported 2 keys." in editor.get(response.headers["Location"]).text
    copied, source = stored(stored_rows, "copy"), stored(stored_rows, "task")
    assert copied == {key: source[key] for key in ("job", "note")}
    history = editor.get(TARGET, headers={"HX-Request": "true", "HX-Target": "history"}).text
    assert history.count("<td>imported</td>") == 2


def test_existing_keys_are_refused_unless_replaced_and_nothing_is_written(editor, two_tis, worker_put, stored_rows):
    worker_put(two_tis["copy"], "job", "mine")
    document = {"keys": [{"key": "new", "value": 1}, {"key": "job", "value": "theirs"}]}
    refused = upload(editor, TARGET, document)
    assert refused.status_code == 422
    assert "1 of these keys already exist (&#39;job&#39;); nothing was imported." in refused.text
    assert stored(stored_rows, "copy") == {"job": ('"mine"', None)}  # all or nothing: "new" was not added

    replaced = upload(editor, TARGET, document, replace=True)
    assert replaced.status_code == 303
    assert "Imported 2 keys (1 replaced)." in editor.get(replaced.headers["Location"]).text
    assert {key: value for key, (value, _expiry) in stored(stored_rows, "copy").items()} == {"job": '"theirs"',
                                                                                              "new": "1"}


@pytest.mark.parametrize(("document", "message"), [
    (b"{not json", "file: is not valid JSON"),
    ({"entries": []}, 'file: must be a JSON object with a &#34;keys&#34; list'),
    ({"format": "other", "keys": []}, "file: is a &#39;other&#39; file"),
    ({"keys": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}, "keys[1].key: repeats keys[0]"),
    ({"keys": [{"key": "a"}]}, "keys[0].value: is missing"),
    ({"keys": [{"key": "a", "value": None}]}, "keys[0].value: must not be null"),
    ({"keys": [{"key": "", "value": 1}]}, "keys[0].key:"),
    ({"keys": [{"key": 7, "value": 1}]}, "keys[0].key: must be a string"),
    ({"keys": [{"key": "a", "value": 1, "expires_at": "2001-01-01T00:00:00Z"}]}, "keys[0].expires_at: 2001-01-01"),
    ({"keys": [{"key": "a", "value": 1, "expires_at": "soon"}]}, "keys[0].expires_at: &#39;soon&#39; is not"),
    ({"keys": [{"key": "a", "value": 1, "owner": "me"}]}, "keys[0]: has unknown fields: owner"),
    ({"keys": ["a"]}, "keys[0]: must be an object"),
])
def test_a_bad_file_is_refused_naming_where_and_writes_nothing(editor, stored_rows, document, message):
    response = upload(editor, TARGET, document)
    assert response.status_code == 422 and message in response.text, response.text[-3000:]
    assert stored(stored_rows, "copy") == {}


def test_an_import_takes_a_bounded_number_of_keys(editor, stored_rows, monkeypatch):
    from webapp.store import key_files  # noqa: PLC0415
    monkeypatch.setattr(key_files, "MAX_IMPORT_KEYS", 3)
    response = upload(editor, TARGET, {"keys": [{"key": f"k{n}", "value": n} for n in range(4)]})
    assert response.status_code == 422 and "holds 4 keys; an import takes at most 3" in response.text
    assert stored(stored_rows, "copy") == {}


def test_viewers_export_but_may_not_import(login_as, two_tis, worker_put, stored_rows):
    worker_put(two_tis["task"], "job", 1)
    viewer = login_as("viewer")
    assert viewer.get(SOURCE + "/export").get_json()["keys"][0]["key"] == "job"
    page = viewer.get(SOURCE).text
    assert "Export keys (JSON)" in page and "Import keys" not in page
    response = viewer.post(TARGET + "/import", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 403 and stored(stored_rows, "copy") == {}


def test_an_asset_round_trip_and_asset_keys_refuse_an_expiry(login_as, make_asset, ti_id, asset_put, worker_auth):
    source, target = make_asset("orders"), make_asset("orders_copy")
    asset_put(worker_auth(ti_id), "orders", "watermark", {"dt": "2026-12-01"})
    editor = login_as("editor")
    document = editor.get(f"/assets/{source}/export").get_json()
    assert document["keys"] == [{"key": "watermark", "value": {"dt": "2026-12-01"}}]  # no expiry: they never expire
    assert upload(editor, f"/assets/{target}", document).status_code == 303
    assert editor.get(f"/assets/{target}/export").get_json()["keys"] == document["keys"]
    soon = (utcnow() + timedelta(days=1)).isoformat()
    refused = upload(editor, f"/assets/{target}", {"keys": [{"key": "x", "value": 1, "expires_at": soon}]})
    assert refused.status_code == 422 and "keys[0].expires_at: must be null: asset keys never expire" in refused.text


def test_expired_keys_not_yet_cleaned_up_are_replaced_not_refused(editor, two_tis, worker_put, stored_rows):
    worker_put(two_tis["copy"], "job", "stale", utcnow() - timedelta(seconds=1))  # gone for readers, row still there
    response = upload(editor, TARGET, {"keys": [{"key": "job", "value": "fresh"}]})
    assert response.status_code == 303, response.text
    assert stored(stored_rows, "copy") == {"job": ('"fresh"', None)}


def test_a_key_a_worker_creates_during_the_import_refuses_it_whole(editor, two_tis, worker_put, stored_rows,
                                                                   monkeypatch):
    from webapp.store import key_files  # noqa: PLC0415
    worker_put(two_tis["copy"], "job", "the worker's")
    # The worker's write lands between the import's look for existing keys and its insert.
    monkeypatch.setattr(key_files, "existing_keys", lambda *_args: [])
    response = upload(editor, TARGET, {"keys": [{"key": "new", "value": 1}, {"key": "job", "value": "mine"}]})
    assert response.status_code == 422 and "A worker wrote one of these keys during the import" in response.text
    assert stored(stored_rows, "copy") == {"job": ('"the worker\'s"', None)}
