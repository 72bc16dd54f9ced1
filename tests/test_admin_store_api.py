"""Admin API for stored keys: listing, editing with expiry choices, size limit, optimistic
concurrency against worker writes, roles."""

from datetime import UTC, datetime, timedelta

import pytest

from support import key_url, store_url


@pytest.fixture
def mapped(make_run):
    return make_run(tasks=(("task", None), ("mapped", [0, 1])))


@pytest.fixture
def editor(admin_auth):
    return admin_auth("editor")


def test_list_is_ordered_by_key_and_paged(client, mapped, worker_put, admin_auth):
    for key in ["b", "a", "c/d"]:
        worker_put(mapped["task"], key, {"k": key})
    worker_put(mapped["task"], "old", 1, "2000-01-01T00:00:00Z")
    response = client.get(store_url(limit=2, offset=1), headers=admin_auth("viewer"))
    assert response.status_code == 200
    body = response.json
    assert body["total_entries"] == 3  # the expired key is not listed
    assert [entry["key"] for entry in body["task_state_store"]] == ["b", "c/d"]
    assert body["task_state_store"][0]["value"] == {"k": "b"}
    assert set(body["task_state_store"][0]) == {"key", "value", "updated_at", "expires_at", "version", "written_by_try"}


def test_get_sends_etag_and_expired_key_is_404(client, mapped, worker_put, admin_auth):
    worker_put(mapped["task"], "job", "app_1")
    worker_put(mapped["task"], "gone", "x", "2000-01-01T00:00:00Z")
    response = client.get(store_url("job"), headers=admin_auth("viewer"))
    assert response.status_code == 200 and response.json["value"] == "app_1"
    assert response.headers["ETag"].startswith('"')
    missing = client.get(store_url("gone"), headers=admin_auth("viewer"))
    assert missing.status_code == 404 and "gone" in missing.json["detail"]["message"]


@pytest.mark.parametrize("expires_at, expected", [
    ("default", "30 days"), (None, None), ("2099-01-02T03:04:05+00:00", "2099-01-02T03:04:05Z"),
])
def test_put_expiry_choices(client, mapped, editor, expires_at, expected):
    response = client.put(store_url("k"), headers=editor,
                          json={"value": [1, 2], "expires_at": expires_at})
    assert response.status_code == 201, response.json
    stored = response.json["expires_at"]
    if expected == "30 days":
        delta = datetime.fromisoformat(stored) - datetime.now(UTC)
        assert timedelta(days=29, hours=23) < delta <= timedelta(days=30)
    else:
        assert stored == expected
    again = client.put(store_url("k"), headers=editor, json={"value": 3, "expires_at": None})
    assert again.status_code == 200 and again.json["version"] == 2


@pytest.mark.parametrize("expires_at, problem", [
    ("2099-01-02T03:04:05", "UTC offset"),
    ("2001-01-01T00:00:00Z", "past"),
    ("tomorrow", "ISO 8601"),
])
def test_put_rejects_bad_expiry_and_writes_nothing(client, mapped, editor, stored_rows, expires_at, problem):
    response = client.put(store_url("k"), headers=editor, json={"value": 1, "expires_at": expires_at})
    assert response.status_code == 422
    assert response.json["detail"]["field"] == "expires_at" and problem in response.json["detail"]["message"]
    assert stored_rows() == []


def test_value_over_soft_limit_is_refused_with_the_limit(make_app, mapped, admin_auth, stored_rows):
    app = make_app(max_value_bytes=100)
    headers = admin_auth("editor")
    response = app.test_client().put(store_url("big"), headers=headers,
                                     json={"value": "x" * 200, "expires_at": None})
    assert response.status_code == 422 and "100 bytes" in response.json["detail"]["message"]
    assert stored_rows() == []


def test_patch_changes_value_and_keeps_expiry(client, mapped, worker_put, editor):
    worker_put(mapped["task"], "progress", {"done": 1}, "2099-05-05T00:00:00+00:00")
    response = client.patch(store_url("progress"), headers=editor, json={"value": {"done": 2}})
    assert response.status_code == 200
    assert response.json["value"] == {"done": 2}
    assert datetime.fromisoformat(response.json["expires_at"]) == datetime(2099, 5, 5, tzinfo=UTC)
    assert client.patch(store_url("absent"), headers=editor, json={"value": 1}).status_code == 404


def test_stale_if_match_is_refused_after_a_worker_write(client, mapped, worker_put, editor, stored_rows):
    worker_put(mapped["task"], "job", "first")
    etag = client.get(store_url("job"), headers=editor).headers["ETag"]
    worker_put(mapped["task"], "job", "worker wrote this")
    for method, body in (("put", {"value": "mine", "expires_at": None}), ("patch", {"value": "mine"}),
                         ("delete", None)):
        response = getattr(client, method)(store_url("job"), headers={**editor, "If-Match": etag}, json=body)
        assert response.status_code == 412, method
        assert response.json["detail"]["current"]["value"] == "worker wrote this"
    assert [row.value for row in stored_rows()] == ['"worker wrote this"']
    fresh = client.get(store_url("job"), headers=editor).headers["ETag"]
    ok = client.put(store_url("job"), headers={**editor, "If-Match": fresh},
                    json={"value": "mine", "expires_at": None})
    assert ok.status_code == 200 and ok.json["value"] == "mine"


def test_if_match_does_not_match_a_recreated_key(client, mapped, worker_auth, editor, worker_put):
    worker_put(mapped["task"], "job", "v1")
    etag = client.get(store_url("job"), headers=editor).headers["ETag"]
    client.delete(key_url(mapped["task"], "job"), headers=worker_auth(mapped["task"]))
    worker_put(mapped["task"], "job", "v1 again")
    response = client.patch(store_url("job"), headers={**editor, "If-Match": etag}, json={"value": 1})
    assert response.status_code == 412


def test_delete_and_clear(client, mapped, worker_put, editor, stored_rows):
    for ti in (mapped[("mapped", 0)], mapped[("mapped", 1)]):
        worker_put(ti, "a", 1)
        worker_put(ti, "b", 2)
    assert client.delete(store_url("a", task="mapped", map_index=0), headers=editor).status_code == 204
    assert sorted((row.map_index, row.key) for row in stored_rows()) == [(0, "b"), (1, "a"), (1, "b")]
    cleared = client.delete(store_url(task="mapped", map_index=1), headers=editor)
    assert cleared.json == {"deleted": 2}
    assert [(row.map_index, row.key) for row in stored_rows()] == [(0, "b")]
    worker_put(mapped[("mapped", 1)], "c", 3)
    everything = client.delete(store_url(task="mapped", all_map_indices="true"), headers=editor)
    assert everything.json == {"deleted": 2} and stored_rows() == []


def test_viewer_cannot_change_anything(client, mapped, worker_put, admin_auth, stored_rows):
    worker_put(mapped["task"], "job", "keep")
    viewer = admin_auth("viewer")
    attempts = [
        client.put(store_url("job"), headers=viewer, json={"value": 1, "expires_at": None}),
        client.patch(store_url("job"), headers=viewer, json={"value": 1}),
        client.delete(store_url("job"), headers=viewer),
        client.delete(store_url(), headers=viewer),
    ]
    assert [response.status_code for response in attempts] == [403] * 4
    assert [row.value for row in stored_rows()] == ['"keep"']


def test_unknown_task_instance_is_404(client, mapped, editor):
    response = client.get(store_url(task="nope"), headers=editor)
    assert response.status_code == 404 and response.json["detail"]["reason"] == "not_found"


def test_every_change_is_recorded_in_history(app, client, mapped, worker_put, editor):
    from webapp import store
    from webapp.runs import get_task_instance

    worker_put(mapped["task"], "job", "from worker")
    client.put(store_url("job"), headers=editor, json={"value": "edited", "expires_at": "2099-01-01T00:00:00Z"})
    client.patch(store_url("job"), headers=editor, json={"value": "patched"})
    client.put(store_url("other"), headers=editor, json={"value": 1, "expires_at": None})
    client.delete(store_url("other"), headers=editor)
    client.delete(store_url(), headers=editor)
    with app.app_context():
        scope = store.scope_of(get_task_instance("dag", "run_1", "task"))
        recorded, _more = store.changes_for(scope)
        changes = [(c.action, c.key, c.old_value, c.new_value) for c in reversed(recorded)]
        actors = {c.actor for c in recorded}
        first = recorded[-1]
    assert changes == [
        ("set", "job", '"from worker"', '"edited"'),
        ("set", "job", '"edited"', '"patched"'),
        ("set", "other", None, "1"),
        ("delete", "other", "1", None),
        ("clear", "job", '"patched"', None),
    ]
    assert first.new_expires_at.isoformat() == "2099-01-01T00:00:00+00:00" and first.old_expires_at is None
    assert len(actors) == 1 and actors.pop().startswith("api-key:test-editor")


def test_refused_edit_records_nothing(app, client, mapped, editor):
    from webapp import store
    from webapp.runs import get_task_instance

    response = client.put(store_url("k"), headers=editor, json={"value": float("nan")})
    assert response.status_code == 422
    with app.app_context():
        assert store.changes_for(store.scope_of(get_task_instance("dag", "run_1", "task"))) == ([], False)


def test_a_put_over_an_expired_key_awaiting_cleanup_creates_it_anew(client, mapped, worker_put, editor, stored_rows):
    worker_put(mapped["task"], "job", "stale", datetime.now(UTC) - timedelta(seconds=1))
    response = client.put(store_url("job"), headers=editor, json={"value": "fresh", "expires_at": None})
    assert response.status_code in (200, 201), response.json
    assert [(row.key, row.value, row.expires_at) for row in stored_rows()] == [("job", '"fresh"', None)]
