"""Reliability: expiry boundaries, racing edits and writers, retries.

Racing clients: 32 threads against the live server (gunicorn, 2 workers x 4 threads) over HTTP with
a keep-alive client each, every loop bounded by MAX_REQUESTS per thread or SECONDS. Besides
"no error" and "one row", the checks use the order the clients observed: each request records
the monotonic time before it was sent and after its answer arrived, so "A was acknowledged
before B was sent" means A committed before B started, and the table must agree.

Expiry at the boundary, clock-independent: the store functions take an explicit
``now``, so a key expiring at T is checked at T - 1 µs, T and T + 1 µs on every database
(MariaDB DATETIME(6), SQLite's text comparison, PostgreSQL's timestamp).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from servers import Outcome, run_threads, timed
from support import key_url, store_url
from webapp import store
from webapp.errors import KeyNotFound
from webapp.extensions import db

THREADS = 32
SECONDS = 3.0
MAX_REQUESTS = 60  # per thread


def bounded(start: threading.Event):
    start.wait()
    deadline = time.monotonic() + SECONDS
    for i in range(MAX_REQUESTS):
        if time.monotonic() > deadline:
            return
        yield i


def errors(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.what} {o.key}: {o.status} {o.body}" for o in outcomes if o.status != 204]


# --- item 5 -------------------------------------------------------------------------------


def test_32_threads_writing_one_key(ti_id, worker_http, stored_rows):
    def writer(n: int, start: threading.Event) -> list:
        client = worker_http(ti_id)
        done = []
        for i in bounded(start):
            value = {"thread": n, "i": i}
            outcome = timed("put", json.dumps(value), lambda: client.put(
                key_url(ti_id, "hot"), json={"value": value, "expires_at": None}))
            done.append(outcome)
        return done

    outcomes = run_threads(THREADS, writer)
    assert errors(outcomes) == []
    assert len(outcomes) >= THREADS * 2

    (row,) = [row for row in stored_rows() if row.key == "hot"]  # one row
    final = json.dumps(json.loads(row.value))
    by_value = {o.key: o for o in outcomes}
    assert final in by_value  # a value that was written ...
    last = by_value[final]
    # ... and one that can be last: no write was sent after its acknowledgement (such a write
    # started after this one committed, so it would have overwritten it).
    later = [o.key for o in outcomes if o.sent > last.answered]
    assert later == []
    assert row.version == len(outcomes)  # every acknowledged write landed once


def test_32_threads_writing_different_keys_of_one_task_instance(ti_id, worker_http, stored_rows):
    def writer(n: int, start: threading.Event) -> list:
        client = worker_http(ti_id)
        return [timed("put", f"t{n}/k{i}", lambda: client.put(
            key_url(ti_id, f"t{n}/k{i}"), json={"value": [n, i], "expires_at": None})) for i in bounded(start)]

    outcomes = run_threads(THREADS, writer)
    assert errors(outcomes) == []
    rows = {row.key: json.loads(row.value) for row in stored_rows()}
    for outcome in outcomes:
        n, i = (int(part[1:]) for part in outcome.key.split("/"))
        assert rows.get(outcome.key) == [n, i], outcome.key
    assert len(rows) == len(outcomes)


def test_clear_racing_set_never_keeps_a_write_acknowledged_before_the_clear(make_run, worker_http, stored_rows):
    ids = make_run(tasks=(("mapped", [0, 1]),))
    racing, bystander = ids[("mapped", 0)], ids[("mapped", 1)]
    assert worker_http(bystander).put(key_url(bystander, "untouched"), json={"value": 1}).status_code == 204
    keys = [f"k{n}" for n in range(8)]

    def worker(n: int, start: threading.Event) -> list:
        client = worker_http(racing)
        done = []
        for i in bounded(start):
            if n % 8 == 0:  # 4 clearers, 28 writers (a few deletes among them)
                done.append(timed("clear", None, lambda: client.delete(key_url(racing))))
            elif i % 7 == 6:
                key = keys[(n + i) % len(keys)]
                done.append(timed("delete", key, lambda: client.delete(key_url(racing, key))))
            else:
                key = keys[(n + i) % len(keys)]
                done.append(timed(f"put {n}.{i}", key, lambda: client.put(
                    key_url(racing, key), json={"value": [n, i], "expires_at": None})))
        return done

    outcomes = run_threads(THREADS, worker)
    assert errors(outcomes) == []
    clears = [o for o in outcomes if o.what == "clear"]
    assert len(clears) >= 4

    removals = defaultdict(list)  # key -> clears and deletes that touched it
    for o in outcomes:
        if o.what == "clear":
            for key in keys:
                removals[key].append(o)
        elif o.what == "delete":
            removals[o.key].append(o)
    writes = {(o.key, o.what.split()[1]): o for o in outcomes if o.what.startswith("put")}

    rows = {row.key: json.loads(row.value) for row in stored_rows() if row.map_index == 0}
    for key, (n, i) in rows.items():
        write = writes[(key, f"{n}.{i}")]
        # The surviving value's write was not acknowledged before a clear, a delete of the key
        # or another write of the key was sent: any of those would have removed or replaced it.
        overtaken = [o.what for o in removals[key] if o.sent > write.answered]
        overtaken += [o.what for (k, _), o in writes.items() if k == key and o.sent > write.answered]
        assert overtaken == [], (key, (n, i), overtaken)
    for (key, _), write in writes.items():
        # A write sent after every clear and delete of its key was acknowledged must have survived.
        if all(write.sent > o.answered for o in removals[key]):
            assert key in rows, key
    bystander_rows = [(row.key, row.value) for row in stored_rows() if row.map_index == 1]
    assert bystander_rows == [("untouched", "1")]  # the other map index was never cleared


def test_admin_edits_without_if_match_racing_workers_are_never_refused(ti_id, worker_http, live_server, admin_auth,
                                                                        stored_rows):
    """No If-Match means no precondition: an edit racing a worker's write is retried, not a 412
    (it was answered 412 "changed while saving" before the fix in store.put_entry/patch_value)."""
    admin = admin_auth("editor")
    url = store_url("hot/key")
    assert worker_http(ti_id).put(key_url(ti_id, "hot/key"), json={"value": 0}).status_code == 204

    def worker(n: int, start: threading.Event) -> list:
        if n % 2 == 0:
            client = worker_http(ti_id)
            return [timed("worker put", None, lambda: client.put(
                key_url(ti_id, "hot/key"), json={"value": [n, i], "expires_at": None})) for i in bounded(start)]
        with httpx.Client(base_url=live_server, headers=admin, timeout=30) as client:
            return [timed("admin " + ("put" if i % 2 else "patch"), None, lambda: client.request(
                "PUT" if i % 2 else "PATCH", url,
                json={"value": [n, i], "expires_at": None} if i % 2 else {"value": [n, i]})) for i in bounded(start)]

    outcomes = run_threads(16, worker)
    refused = [f"{o.what}: {o.status} {o.body}" for o in outcomes
               if o.status != (204 if o.what == "worker put" else 200)]
    assert refused == []
    assert len([row for row in stored_rows() if row.key == "hot/key"]) == 1


# --- item 7: expiry at the boundary ---------------------------------------------------------

MICRO = timedelta(microseconds=1)
BOUNDARIES = [
    datetime(2031, 5, 6, 7, 8, 9, 123457, tzinfo=UTC),
    datetime(2031, 5, 6, 7, 8, 9, 0, tzinfo=UTC),  # T - 1 µs is in the previous second
    datetime(2031, 5, 6, 7, 8, 9, 999999, tzinfo=UTC),  # T + 1 µs is in the next second
    datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # ... and the next year
    datetime(2031, 3, 30, 1, 0, 0, 1, tzinfo=UTC),  # a daylight-saving change in Europe
]
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)),
           timezone(timedelta(hours=14))]


def readable(scope, key: str, now: datetime) -> bool:
    try:
        store.read_value_json(store.TASK_INSTANCE_BY_ID, key, now=now, ti_id=scope.ti_id)
    except KeyNotFound:
        return False
    return True


def views_at(scope, key: str, now: datetime) -> dict[str, bool]:
    """Every reader of the store at ``now``: they must agree on whether the key is live."""
    entries, total = store.list_entries(scope, limit=10, now=now)
    return {
        "read": readable(scope, key, now),
        "entry": store.current_entry(scope, key, now) is not None,
        "list": [entry.key for entry in entries] == [key] and total == 1,
    }


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=lambda t: t.isoformat())
def test_a_key_expiring_at_t_is_readable_before_t_and_gone_at_t(app, ti_id, boundary):
    with app.app_context():
        scope = store.find(store.TASK_INSTANCE_BY_ID, ti_id=uuid.UUID(ti_id))
        store.write(store.TASK_INSTANCE_BY_ID, "k", '"v"', boundary, now=boundary - timedelta(days=1),
                    ti_id=scope.ti_id)
        db.session.commit()
        for offset in OFFSETS:  # the same instants, written in other time zones
            before, at, after = ((boundary + delta).astimezone(offset) for delta in (-MICRO, timedelta(0), MICRO))
            assert views_at(scope, "k", before) == dict.fromkeys(("read", "entry", "list"), True), before
            assert views_at(scope, "k", at) == dict.fromkeys(("read", "entry", "list"), False), at
            assert views_at(scope, "k", after) == dict.fromkeys(("read", "entry", "list"), False), after
            # garbage collection agrees: nothing to collect just before T, the row at T
            assert list(store.list_expired(now=before)) == []
            assert [row.key for row in store.list_expired(now=at)] == ["k"]
        assert list(store.delete_expired(batch_size=10, now=boundary - MICRO)) == []
        assert readable(scope, "k", boundary - MICRO)
        assert sum(store.delete_expired(batch_size=10, now=boundary)) == 1
        assert not readable(scope, "k", boundary - MICRO)  # the row itself is gone now


@pytest.mark.parametrize("sent", [
    "2031-05-06T12:38:09.123457+05:30",
    "2031-05-05T23:08:09.123457-08:00",
    "2031-05-06T07:08:09.123457Z",
    "2031-05-06T07:08:09.123457",  # naive: read as UTC
    "2031-05-06T07:08:09.123457+00:00",
], ids=["+05:30", "-08:00", "Z", "naive", "+00:00"])
def test_expiry_sent_through_the_worker_api_in_any_offset_is_the_same_instant(app, client, ti_id, worker_auth, sent):
    boundary = datetime(2031, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
    response = client.put(key_url(ti_id, "k"), headers=worker_auth(ti_id), json={"value": 1, "expires_at": sent})
    assert response.status_code == 204, response.text
    with app.app_context():
        scope = store.find(store.TASK_INSTANCE_BY_ID, ti_id=uuid.UUID(ti_id))
        assert store.get_entry(scope, "k", now=boundary - MICRO).expires_at == boundary
        for offset in OFFSETS:
            assert readable(scope, "k", (boundary - MICRO).astimezone(offset))
            assert not readable(scope, "k", boundary.astimezone(offset))


def test_expiry_sent_through_the_admin_api_with_an_offset_is_the_same_instant(app, client, ti_id, admin_auth):
    boundary = datetime(2031, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
    response = client.put(store_url("k"), headers=admin_auth("editor"),
                          json={"value": 1, "expires_at": "2031-05-06T16:08:09.123457+09:00"})
    assert response.status_code == 201, response.text
    assert datetime.fromisoformat(response.get_json()["expires_at"]) == boundary
    with app.app_context():
        scope = store.find(store.TASK_INSTANCE_BY_ID, ti_id=uuid.UUID(ti_id))
        assert readable(scope, "k", boundary - MICRO) and not readable(scope, "k", boundary)


def test_a_naive_now_is_refused_rather_than_guessed(app, ti_id):
    """Store functions compare in UTC; a naive ``now`` would be a time-zone guess."""
    with app.app_context():
        scope = store.find(store.TASK_INSTANCE_BY_ID, ti_id=uuid.UUID(ti_id))
        store.write(store.TASK_INSTANCE_BY_ID, "k", "1", datetime(2031, 1, 1, tzinfo=UTC), ti_id=scope.ti_id)
        db.session.commit()
        with pytest.raises(Exception, match="naive"):
            store.read_value_json(store.TASK_INSTANCE_BY_ID, "k", now=datetime(2030, 1, 1), ti_id=scope.ti_id)
        db.session.rollback()
