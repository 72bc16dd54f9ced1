"""Racing writers against the live server (contract section 9): real threads, real HTTP,
two gunicorn processes. Every request must be acknowledged (no 503 from a deadlock or a
locked database), and the table must end up consistent: one row per key, last write wins.

Every loop stops after MAX_REQUESTS requests or SECONDS seconds, whichever comes first."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx

THREADS = 8
SECONDS = 2.0
MAX_REQUESTS = 150  # per thread


def key_url(ti: str, key: str) -> str:
    return f"/execution/store/ti/{ti}/{quote(key, safe='')}"


def run_threads(work: Callable[[int, threading.Event], list], threads: int = THREADS) -> list:
    """Start ``threads`` copies of ``work(n, start)`` at once; return their results, flattened."""
    start = threading.Event()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, n, start) for n in range(threads)]
        start.set()
        return [item for future in futures for item in future.result()]


def bounded(start: threading.Event):
    """Loop counter for one thread: MAX_REQUESTS iterations or SECONDS seconds."""
    start.wait()
    deadline = time.monotonic() + SECONDS
    for i in range(MAX_REQUESTS):
        if time.monotonic() > deadline:
            return
        yield i


def failures(results: list[tuple[str, httpx.Response]], expected: int = 204) -> list[str]:
    return [f"{what}: {r.status_code} {r.text[:200]}" for what, r in results if r.status_code != expected]


def test_writers_racing_on_one_key(ti_id, worker_http, stored_rows):
    def writer(n: int, start: threading.Event):
        http = worker_http(ti_id)
        results = []
        for i in bounded(start):
            value = {"thread": n, "i": i}
            results.append((json.dumps(value), http.put(key_url(ti_id, "hot/key"), json={"value": value, "expires_at": None})))
        return results

    results = run_threads(writer)
    assert failures(results) == []
    acknowledged = {value for value, _ in results}
    assert len(acknowledged) == len(results) >= THREADS  # every write was distinct

    (row,) = [row for row in stored_rows() if row.key == "hot/key"]  # exactly one row
    assert json.dumps(json.loads(row.value)) in acknowledged  # the value is one that was written
    assert row.version == len(results)  # every acknowledged write landed: none lost or doubled
    final = worker_http(ti_id).get(key_url(ti_id, "hot/key"))
    assert final.status_code == 200 and final.json()["value"] == json.loads(row.value)


def test_writers_on_different_keys_of_one_task_instance(ti_id, worker_http, stored_rows):
    def writer(n: int, start: threading.Event):
        http = worker_http(ti_id)
        results = []
        for i in bounded(start):
            key = f"thread-{n}/key-{i}"
            results.append((key, http.put(key_url(ti_id, key), json={"value": [n, i], "expires_at": None})))
        return results

    results = run_threads(writer)
    assert failures(results) == []
    rows = {row.key: json.loads(row.value) for row in stored_rows()}
    assert len(rows) == len(results)
    for key, _ in results:
        n, i = (int(part.split("-")[1]) for part in key.split("/"))
        assert rows[key] == [n, i]


def test_clear_racing_set(make_run, worker_http, stored_rows):
    ids = make_run(tasks=(("mapped", [0, 1]),))
    racing, bystander = ids[("mapped", 0)], ids[("mapped", 1)]
    worker_http(bystander).put(key_url(bystander, "untouched"), json={"value": 1, "expires_at": None})

    def worker(n: int, start: threading.Event):
        http = worker_http(racing)
        results = []
        for i in bounded(start):
            if n % 4 == 0:  # two clearers, six writers
                results.append(("clear", http.delete(f"/execution/store/ti/{racing}")))
            else:
                key = f"k{i % 5}"  # few keys, so clears and upserts hit the same rows
                results.append((f"set {key}", http.put(key_url(racing, key), json={"value": [n, i], "expires_at": None})))
                if i % 3 == 0:
                    results.append((f"delete {key}", http.delete(key_url(racing, key))))
        return results

    results = run_threads(worker)
    assert failures(results) == []
    assert Counter(what.split()[0] for what, _ in results)["clear"] >= 2

    keys = [(row.map_index, row.key) for row in stored_rows()]
    assert len(keys) == len(set(keys))  # never a duplicate row
    assert (1, "untouched") in keys  # the other map index was never cleared
    assert worker_http(racing).delete(f"/execution/store/ti/{racing}").status_code == 204
    assert [(row.map_index, row.key) for row in stored_rows()] == [(1, "untouched")]


def test_readers_and_writers_on_one_key(ti_id, worker_http):
    """Readers never see an error or a torn value while writers overwrite the key."""
    worker_http(ti_id).put(key_url(ti_id, "k"), json={"value": {"n": -1}, "expires_at": None})

    def worker(n: int, start: threading.Event):
        http = worker_http(ti_id)
        results = []
        for i in bounded(start):
            if n % 2:
                results.append(("put", http.put(key_url(ti_id, "k"), json={"value": {"n": n, "i": i}, "expires_at": None})))
            else:
                results.append(("get", http.get(key_url(ti_id, "k"))))
        return results

    results = run_threads(worker)
    assert failures([(w, r) for w, r in results if w == "put"]) == []
    assert failures([(w, r) for w, r in results if w == "get"], expected=200) == []
    assert all(set(r.json()["value"]) <= {"n", "i"} for w, r in results if w == "get")
