"""The worker API under ``/execution`` and the key/value rules of
section 1 as a worker sees them: status codes, JSON bodies and what is (not) in the table."""

from __future__ import annotations

import base64
import io
import json
import logging
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url

from support import WORKER_API, b64url, canonical, detail, key_url, token_claims, worker_call
from webapp.auth import tokens

# --- helpers ------------------------------------------------------------------------------


def put_body(value, **fields) -> str:
    return json.dumps({"value": value, **fields})


def by_key(rows) -> dict:
    return {(row.task_id, row.map_index, row.key): row for row in rows}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


WORKER_CALLS = ["GET", "PUT", "DELETE", "CLEAR"]


# --- happy paths --------------------------------------------------------------------------


def test_put_then_get_returns_the_value(client, ti_id, auth, stored_rows):
    response = client.put(key_url(ti_id, "job_id"), data=put_body("application_1234"), headers=auth)
    assert response.status_code == 204
    assert response.data == b""

    response = client.get(key_url(ti_id, "job_id"), headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"value": "application_1234"}

    [row] = stored_rows()
    assert (row.task_id, row.map_index, row.key, row.value, row.version) == (
        "task", -1, "job_id", '"application_1234"', 1)
    assert row.expires_at is None


@pytest.mark.parametrize(
    "value",
    [
        3, -7, 0, "3", "", 1.5, 3.0, 0.1, -2.5e-7, True, False,
        2**64 + 1, -(2**70), 12345678901234567890123456789,
        [], {}, [1, "two", 3.0, False, None], {"a": None},
        {"cursor": {"page": 4, "ids": [1, 2, {"deep": ["x", {"y": True}]}]}, "done": False},
        "héllo wörld ✓ 日本語 🎉 \u200b", "line\nbreak\ttab \"quoted\" back\\slash \x00 nul",
        {"ключ": "значение", "🎉": ["🎂"]},
        [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
    ],
    ids=repr,
)
def test_values_round_trip_exactly(client, ti_id, auth, stored_rows, value):
    assert client.put(key_url(ti_id, "k"), data=put_body(value), headers=auth).status_code == 204

    response = client.get(key_url(ti_id, "k"), headers=auth)
    assert response.status_code == 200
    assert canonical(response.get_json()["value"]) == canonical(value)
    [row] = stored_rows()
    assert canonical(json.loads(row.value)) == canonical(value)


@pytest.mark.parametrize(
    ("value", "wire"),
    [(3, b'{"value":3}'), ("3", b'{"value":"3"}'), (3.0, b'{"value":3.0}'), (True, b'{"value":true}'),
     (2**70, b'{"value":1180591620717411303424}')],
    ids=repr,
)
def test_get_sends_numbers_and_strings_as_written(client, ti_id, auth, value, wire):
    assert client.put(key_url(ti_id, "k"), data=put_body(value), headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).data == wire


def test_overwrite_last_write_wins_in_one_row_and_bumps_version(client, ti_id, auth, stored_rows):
    future = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    assert client.put(key_url(ti_id, "k"), data=put_body(1, expires_at=future.isoformat()),
                      headers=auth).status_code == 204
    assert client.put(key_url(ti_id, "k"), data=put_body({"second": 2}), headers=auth).status_code == 204
    assert client.put(key_url(ti_id, "k"), data=put_body("third", expires_at=None), headers=auth).status_code == 204

    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": "third"}
    [row] = stored_rows()
    assert (row.key, row.value, row.version, row.expires_at) == ("k", '"third"', 3, None)


def test_delete_removes_only_that_key(client, ti_id, auth, stored_rows):
    for key in ("a", "b"):
        assert client.put(key_url(ti_id, key), data=put_body(key), headers=auth).status_code == 204

    response = client.delete(key_url(ti_id, "a"), headers=auth)
    assert response.status_code == 204
    assert response.data == b""

    assert client.get(key_url(ti_id, "a"), headers=auth).status_code == 404
    assert client.get(key_url(ti_id, "b"), headers=auth).get_json() == {"value": "b"}
    assert [row.key for row in stored_rows()] == ["b"]


def test_deleting_a_missing_key_is_fine(client, ti_id, auth, seeded, stored_rows):
    for _ in range(2):
        assert client.delete(key_url(ti_id, "never-written"), headers=auth).status_code == 204
    assert stored_rows() == seeded


def test_clear_removes_every_key_of_the_task_instance(client, ti_id, auth, stored_rows):
    for key in ("a", "b/c", "d"):
        assert client.put(key_url(ti_id, key), data=put_body(key), headers=auth).status_code == 204

    response = client.delete(key_url(ti_id), headers=auth)
    assert response.status_code == 204
    assert response.data == b""
    assert stored_rows() == []
    assert client.get(key_url(ti_id, "a"), headers=auth).status_code == 404
    # Clearing an empty store is fine too.
    assert client.delete(key_url(ti_id), headers=auth).status_code == 204


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("write_encoded", "read_encoded"),
                         [(True, False), (False, True), (True, True), (False, False)])
def test_slash_in_key_raw_and_percent_encoded_reach_the_same_key(client, ti_id, auth, stored_rows,
                                                                  write_encoded, read_encoded):
    write_url = key_url(ti_id, "spark/job_id", encode=write_encoded)
    assert ("%2F" in write_url) == write_encoded
    assert client.put(write_url, data=put_body("app_1"), headers=auth).status_code == 204

    read_url = key_url(ti_id, "spark/job_id", encode=read_encoded)
    assert client.get(read_url, headers=auth).get_json() == {"value": "app_1"}
    assert [row.key for row in stored_rows()] == ["spark/job_id"]

    assert client.delete(read_url, headers=auth).status_code == 204
    assert stored_rows() == []


@pytest.mark.parametrize(
    "key",
    ["ключ/データ", "🎉", "a b", "100%", "a%2Fb", "a?b#c&d=e", "a+b", "/leading", "trailing/", "a//b",
     ".", "..", "a/./b", "a/../b", " padded ", "e\u0301", "\u00e9", "a" * 512, "🎉" * 512, "é/" * 256],
    ids=lambda key: repr(key[:20]) + (f"..({len(key)})" if len(key) > 20 else ""),
)
def test_any_unicode_key_up_to_512_characters_is_stored_as_sent(client, ti_id, auth, stored_rows, key):
    assert client.put(key_url(ti_id, key), data=put_body(key), headers=auth).status_code == 204

    assert client.get(key_url(ti_id, key), headers=auth).get_json() == {"value": key}
    [row] = stored_rows()
    assert row.key == key

    assert client.delete(key_url(ti_id, key), headers=auth).status_code == 204
    assert stored_rows() == []


def test_unicode_key_sent_unencoded_reaches_the_same_key(client, ti_id, auth, stored_rows):
    key = "ключ/データ"
    assert client.put(key_url(ti_id, key, encode=False), data=put_body(1), headers=auth).status_code == 204
    assert client.get(key_url(ti_id, key, encode=True), headers=auth).get_json() == {"value": 1}
    assert [row.key for row in stored_rows()] == [key]


def test_keys_compare_exactly(client, ti_id, auth, stored_rows):
    """Case, trailing spaces and Unicode normalisation all make different keys, on every database."""
    keys = ["a", "A", "a ", "\u00e9", "e\u0301"]
    for key in keys:
        assert client.put(key_url(ti_id, key), data=put_body(key), headers=auth).status_code == 204
    for key in keys:
        assert client.get(key_url(ti_id, key), headers=auth).get_json() == {"value": key}
    assert sorted(row.key for row in stored_rows()) == sorted(keys)


@pytest.mark.parametrize("key", ["k" * 513, "é" * 513, "a/" * 300], ids=["513 ascii", "513 accented", "600 slashes"])
def test_key_longer_than_512_characters_is_rejected(client, ti_id, auth, seeded, stored_rows, key):
    for method in ("GET", "PUT", "DELETE"):
        response = worker_call(client, method, ti_id, key, auth)
        assert response.status_code == 422, method
        error = detail(response)
        assert error["reason"] == "validation_error"
        assert error["field"] == "key"
        assert f"{len(key)} characters" in error["message"] and "512" in error["message"]
        assert stored_rows() == seeded, method


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85"], ids=repr)
def test_key_with_a_control_character_is_rejected(client, ti_id, auth, seeded, stored_rows, char):
    for method in ("GET", "PUT", "DELETE"):
        response = worker_call(client, method, ti_id, f"bad{char}key", auth)
        assert response.status_code == 422, method
        error = detail(response)
        assert error["field"] == "key"
        assert error["message"].startswith("key:")
        assert "control character" in error["message"]
        assert f"U+{ord(char):04X} at position 3" in error["message"]
        assert stored_rows() == seeded, method


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_empty_key_is_rejected(client, ti_id, auth, seeded, stored_rows, method):
    """A trailing slash is an empty key; above all, DELETE on it must not clear the TI."""
    response = client.open(f"{WORKER_API}/{ti_id}/", method=method, data=put_body(1), headers=auth)
    assert response.status_code == 422
    error = detail(response)
    assert error["field"] == "key"
    assert "empty" in error["message"]
    assert stored_rows() == seeded


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_key_that_is_not_utf8_is_rejected(client, ti_id, auth, seeded, stored_rows, method):
    """Bytes that are not UTF-8 are not silently turned into U+FFFD (which would merge keys).
    The test client replaces them itself, so the path is given as a WSGI server passes it."""
    raw_path = f"{WORKER_API}/{ti_id}/bad\xffkey"  # WSGI: the bytes of %FF, as latin-1
    response = client.open(f"{WORKER_API}/{ti_id}/bad%FFkey", method=method, data=put_body(1), headers=auth,
                           environ_overrides={"PATH_INFO": raw_path})
    assert response.status_code == 422
    error = detail(response)
    assert error["field"] == "key"
    assert "UTF-8" in error["message"]
    assert stored_rows() == seeded


# --- bodies -------------------------------------------------------------------------------

BAD_BODIES = [
    # (raw body, field named, words in the message)
    (b"{}", "value", "required"),
    (b'{"expires_at": null}', "value", "required"),
    (b'{"value": null}', "value", "null"),
    (b'{"value": null, "expires_at": null}', "value", "null"),
    (b'{"value": 1, "ttl": 60}', "ttl", "not a field"),
    (b'{"value": 1, "expires_at": null, "Value": 2}', "Value", "not a field"),
    (b'{"value": NaN}', "value", "NaN"),
    (b'{"value": Infinity}', "value", "Infinity"),
    (b'{"value": -Infinity}', "value", "Infinity"),
    (b'{"value": [1, {"a": NaN}]}', "value", "NaN"),
    (b'{"value": 1e400}', "value", "Infinity"),
    (b'{"value": {"big": -1e400}}', "value", "Infinity"),
    (b'{"value": 1, "expires_at": NaN}', "expires_at", "ISO 8601"),
    (b'{"value": "\\ud800"}', "value", "surrogate"),
    (b'{"value": {"\\udfff": 1}}', "value", "surrogate"),
    (b"", "body", "not valid JSON"),
    (b'{"value": ', "body", "not valid JSON"),
    (b'{"value": 1,}', "body", "not valid JSON"),
    (b"{'value': 1}", "body", "not valid JSON"),
    (b'{"value": 1} trailing', "body", "not valid JSON"),
    (b'value=1', "body", "not valid JSON"),
    (b'{"value": "caf\xe9"}', "body", "not valid JSON"),
    (b'{"value": "\xff\xfe\xfd"}', "body", "not valid JSON"),
    (b"[" * 100_000, "body", "nested too deeply"),
    (b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body", "nested too deeply"),
    (b'[{"value": 1}]', "body", "JSON object"),
    (b'"value"', "body", "JSON object"),
    (b"3", "body", "JSON object"),
    (b"null", "body", "JSON object"),
    (b'{"value": 1, "expires_at": "tomorrow"}', "expires_at", "tomorrow"),
    (b'{"value": 1, "expires_at": ""}', "expires_at", "ISO 8601"),
    (b'{"value": 1, "expires_at": "2030-13-01T00:00:00"}', "expires_at", "ISO 8601"),
    (b'{"value": 1, "expires_at": "2030-01-01T25:00:00Z"}', "expires_at", "ISO 8601"),
    (b'{"value": 1, "expires_at": "0001-01-01T00:00:00+01:00"}', "expires_at", "out of range"),
    (b'{"value": 1, "expires_at": "9999-12-31T23:59:59-01:00"}', "expires_at", "out of range"),
    (b'{"value": 1, "expires_at": 1893456000}', "expires_at", "int"),
    (b'{"value": 1, "expires_at": 1893456000.5}', "expires_at", "float"),
    (b'{"value": 1, "expires_at": true}', "expires_at", "bool"),
    (b'{"value": 1, "expires_at": ["2030-01-01T00:00:00Z"]}', "expires_at", "list"),
    (b'{"value": 1, "expires_at": {"days": 3}}', "expires_at", "dict"),
]


@pytest.mark.parametrize(("raw", "field", "words"), BAD_BODIES, ids=lambda item: repr(item)[:60])
def test_bad_body_is_rejected_naming_the_field_and_nothing_is_written(client, ti_id, auth, seeded, stored_rows,
                                                                     raw, field, words):
    response = client.put(key_url(ti_id, "seed"), data=raw, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 422
    error = detail(response)
    assert error["reason"] == "validation_error"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}:")
    assert words in error["message"]
    # Neither an overwrite nor a new row.
    assert stored_rows() == seeded


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/octet-stream",
     "multipart/form-data; boundary=xyz", "application/json; charset=utf-8"],
)
def test_body_is_read_as_json_whatever_the_content_type(client, ti_id, auth, stored_rows, content_type):
    headers = dict(auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.put(key_url(ti_id, "k"), data=put_body({"job": "a&b=c"}).encode(), headers=headers)
    assert response.status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": {"job": "a&b=c"}}
    assert [row.value for row in stored_rows()] == ['{"job":"a&b=c"}']


def test_request_without_content_type_header(app, ti_id, auth, stored_rows):
    """Raw WSGI environ: no CONTENT_TYPE at all, as some clients send."""
    environ_check = {}

    @app.before_request
    def _record():
        from flask import request
        environ_check["content_type"] = request.environ.get("CONTENT_TYPE")

    body = put_body([1, 2]).encode()
    response = app.test_client().put(key_url(ti_id, "k"), input_stream=io.BytesIO(body),
                                     headers={**auth, "Content-Length": str(len(body))})
    assert response.status_code == 204
    assert not environ_check["content_type"]
    assert [row.value for row in stored_rows()] == ["[1,2]"]


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2031-06-01T12:30:45", datetime(2031, 6, 1, 12, 30, 45, tzinfo=UTC)),
        ("2031-06-01T12:30:45.123456", datetime(2031, 6, 1, 12, 30, 45, 123456, tzinfo=UTC)),
        ("2031-06-01T12:30:45Z", datetime(2031, 6, 1, 12, 30, 45, tzinfo=UTC)),
        ("2031-06-01T12:30:45+00:00", datetime(2031, 6, 1, 12, 30, 45, tzinfo=UTC)),
        ("2031-06-01T12:30:45.123456+02:00", datetime(2031, 6, 1, 10, 30, 45, 123456, tzinfo=UTC)),
        ("2031-06-01T01:00:00+02:00", datetime(2031, 5, 31, 23, 0, 0, tzinfo=UTC)),
        ("2031-06-01T12:30:45-05:30", datetime(2031, 6, 1, 18, 0, 45, tzinfo=UTC)),
    ],
)
def test_expires_at_is_stored_as_the_utc_instant(client, ti_id, auth, stored_rows, sent, stored):
    """A naive timestamp is read as UTC; an aware one is converted to UTC."""
    assert client.put(key_url(ti_id, "k"), data=put_body(1, expires_at=sent), headers=auth).status_code == 204
    [row] = stored_rows()
    assert row.expires_at == stored
    assert row.expires_at.utcoffset() == timedelta(0)
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": 1}


@pytest.mark.parametrize("naive", [False, True])
def test_expired_key_is_gone_at_once_though_the_row_remains(client, ti_id, auth, stored_rows, naive):
    past = datetime.now(UTC) - timedelta(minutes=5)
    sent = past.replace(tzinfo=None).isoformat() if naive else past.isoformat()
    assert client.put(key_url(ti_id, "old"), data=put_body("stale", expires_at=sent), headers=auth).status_code == 204

    response = client.get(key_url(ti_id, "old"), headers=auth)
    assert response.status_code == 404
    error = detail(response)
    assert error["reason"] == "not_found"
    assert "old" in error["message"]
    # Garbage collection has not run: the row is still there, and still unreadable.
    [row] = stored_rows()
    assert (row.key, row.value) == ("old", '"stale"')
    assert row.expires_at < datetime.now(UTC)


def test_expired_key_can_be_written_again(client, ti_id, auth, stored_rows):
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert client.put(key_url(ti_id, "k"), data=put_body("stale", expires_at=past), headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).status_code == 404

    assert client.put(key_url(ti_id, "k"), data=put_body("fresh"), headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": "fresh"}
    [row] = stored_rows()
    assert (row.value, row.expires_at, row.version) == ('"fresh"', None, 2)


def test_expired_key_can_be_deleted(client, ti_id, auth, stored_rows):
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert client.put(key_url(ti_id, "k"), data=put_body(1, expires_at=past), headers=auth).status_code == 204
    assert client.delete(key_url(ti_id, "k"), headers=auth).status_code == 204
    assert stored_rows() == []


def test_future_expiry_is_readable(client, ti_id, auth, stored_rows):
    future = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    assert client.put(key_url(ti_id, "k"), data=put_body("live", expires_at=future.isoformat()),
                      headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": "live"}
    [row] = stored_rows()
    assert row.expires_at == future


@pytest.mark.parametrize("body", [b'{"value": "forever"}', b'{"value": "forever", "expires_at": null}'],
                         ids=["expires_at left out", "expires_at null"])
def test_no_expiry_or_a_null_one_never_expires(client, ti_id, auth, stored_rows, body):
    assert client.put(key_url(ti_id, "k"), data=body, headers=auth).status_code == 204
    [row] = stored_rows()
    assert row.expires_at is None
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": "forever"}


# --- isolation ----------------------------------------------------------------------------


def test_clear_only_touches_this_map_index(client, make_run, worker_auth, stored_rows):
    tis = make_run(run_id="mapped_run", tasks=(("mapped", [0, 1, 2]), ("other", None)))
    every_ti = [tis[("mapped", index)] for index in (0, 1, 2)] + [tis["other"]]
    for ti in every_ti:
        for key in ("progress", "job"):
            response = client.put(key_url(ti, key), data=put_body(f"{ti}:{key}"), headers=worker_auth(ti))
            assert response.status_code == 204

    middle = tis[("mapped", 1)]
    assert client.delete(key_url(middle), headers=worker_auth(middle)).status_code == 204

    remaining = by_key(stored_rows())
    assert sorted({(task_id, index) for task_id, index, _key in remaining}) == [
        ("mapped", 0), ("mapped", 2), ("other", -1)]
    assert len(remaining) == 6
    for ti in (tis[("mapped", 0)], tis[("mapped", 2)], tis["other"]):
        assert client.get(key_url(ti, "job"), headers=worker_auth(ti)).get_json() == {"value": f"{ti}:job"}
    assert client.get(key_url(middle, "job"), headers=worker_auth(middle)).status_code == 404


def test_map_indexes_have_separate_keys(client, make_run, worker_auth, stored_rows):
    tis = make_run(run_id="mapped_run", tasks=(("mapped", [0, 1]),))
    first, second = tis[("mapped", 0)], tis[("mapped", 1)]
    assert client.put(key_url(first, "k"), data=put_body("zero"), headers=worker_auth(first)).status_code == 204
    assert client.get(key_url(second, "k"), headers=worker_auth(second)).status_code == 404
    assert client.put(key_url(second, "k"), data=put_body("one"), headers=worker_auth(second)).status_code == 204
    assert client.delete(key_url(second, "k"), headers=worker_auth(second)).status_code == 204

    assert client.get(key_url(first, "k"), headers=worker_auth(first)).get_json() == {"value": "zero"}
    assert [(row.map_index, row.key, row.value) for row in stored_rows()] == [(0, "k", '"zero"')]


def test_different_runs_never_share_keys(client, make_run, worker_auth, stored_rows):
    run_1 = make_run(dag_id="etl", run_id="scheduled__2026-01-01")["task"]
    run_2 = make_run(dag_id="etl", run_id="scheduled__2026-01-02")["task"]
    assert client.put(key_url(run_1, "job_id"), data=put_body("one"), headers=worker_auth(run_1)).status_code == 204
    assert client.get(key_url(run_2, "job_id"), headers=worker_auth(run_2)).status_code == 404
    assert client.put(key_url(run_2, "job_id"), data=put_body("two"), headers=worker_auth(run_2)).status_code == 204

    assert client.get(key_url(run_1, "job_id"), headers=worker_auth(run_1)).get_json() == {"value": "one"}
    assert client.get(key_url(run_2, "job_id"), headers=worker_auth(run_2)).get_json() == {"value": "two"}
    assert len(stored_rows()) == 2

    assert client.delete(key_url(run_2), headers=worker_auth(run_2)).status_code == 204
    assert client.get(key_url(run_1, "job_id"), headers=worker_auth(run_1)).get_json() == {"value": "one"}
    assert client.delete(key_url(run_1, "job_id"), headers=worker_auth(run_1)).status_code == 204
    assert stored_rows() == []


def test_two_tasks_of_one_run_never_share_keys(client, make_run, worker_auth, stored_rows):
    tis = make_run(run_id="two_tasks", tasks=(("extract", None), ("load", None)))
    extract, load = tis["extract"], tis["load"]
    assert client.put(key_url(extract, "k"), data=put_body("e"), headers=worker_auth(extract)).status_code == 204
    assert client.put(key_url(load, "k"), data=put_body("l"), headers=worker_auth(load)).status_code == 204

    assert client.get(key_url(extract, "k"), headers=worker_auth(extract)).get_json() == {"value": "e"}
    assert client.delete(key_url(load, "k"), headers=worker_auth(load)).status_code == 204
    assert client.get(key_url(extract, "k"), headers=worker_auth(extract)).get_json() == {"value": "e"}
    assert client.delete(key_url(load), headers=worker_auth(load)).status_code == 204
    assert [(row.task_id, row.key) for row in stored_rows()] == [("extract", "k")]


# --- not found ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", WORKER_CALLS)
def test_unknown_task_instance_is_404_with_airflows_message(client, worker_auth, stored_rows, method):
    unknown = str(uuid.uuid4())
    response = worker_call(client, method, unknown, "k", worker_auth(unknown))
    assert response.status_code == 404
    assert response.get_json() == {
        "detail": {"reason": "not_found", "message": f"Task instance {unknown} not found"}}
    assert stored_rows() == []


def test_missing_key_is_404_naming_the_key(client, ti_id, auth):
    response = client.get(key_url(ti_id, "spark/job_id"), headers=auth)
    assert response.status_code == 404
    error = detail(response)
    assert error["reason"] == "not_found"
    assert "spark/job_id" in error["message"]
    assert error["message"] != f"Task instance {ti_id} not found"


def test_task_instance_id_is_case_insensitive(client, ti_id, auth):
    assert client.put(key_url(ti_id.upper(), "k"), data=put_body(1), headers=auth).status_code == 204
    assert client.get(key_url(ti_id, "k"), headers=auth).get_json() == {"value": 1}


# --- authentication and authorization -----------------------------------------------------


def _tampered(app, ti_id, other_ti_id):
    """A real token for ``other_ti_id`` whose payload now names ``ti_id``; the signature is kept."""
    with app.app_context():
        token, _ = tokens.issue(other_ti_id)
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["sub"] = ti_id
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _alg_none(app, ti_id, _other):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    claims = token_claims(app, ti_id)
    claims = {name: int(value.timestamp()) if isinstance(value, datetime) else value for name, value in claims.items()}
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def _signed(key=None, **overrides):
    def make(app, ti_id, _other):
        return jwt.encode(token_claims(app, ti_id, **overrides), key or app.config["SECRET_KEY"], algorithm="HS256")
    return make


def _expired(app, ti_id, _other):
    lifetime = app.config["TASKSTORE"].token_lifetime_seconds
    with app.app_context():
        token, _ = tokens.issue(ti_id, now=datetime.now(UTC) - timedelta(seconds=lifetime + 60))
    return token


BAD_AUTHORIZATION = {
    "no header": None,
    "empty": lambda app, ti, other: "",
    "bearer without token": lambda app, ti, other: "Bearer ",
    "token without scheme": lambda app, ti, other: _signed()(app, ti, other),
    "basic scheme": lambda app, ti, other: "Basic " + base64.b64encode(b"user:pass").decode(),
    "token scheme": lambda app, ti, other: "Token " + _signed()(app, ti, other),
    "garbage": lambda app, ti, other: "Bearer not-a-jwt",
    "garbage with dots": lambda app, ti, other: "Bearer aaa.bbb.ccc",
    "tampered payload": lambda app, ti, other: "Bearer " + _tampered(app, ti, other),
    "wrong signing key": lambda app, ti, other: "Bearer " + _signed("another-secret-" + "y" * 40)(app, ti, other),
    "alg none": lambda app, ti, other: "Bearer " + _alg_none(app, ti, other),
    "expired": lambda app, ti, other: "Bearer " + _expired(app, ti, other),
    "not yet valid": lambda app, ti, other: "Bearer " + _signed(nbf=datetime.now(UTC) + timedelta(hours=1))(
        app, ti, other),
    "wrong audience": lambda app, ti, other: "Bearer " + _signed(aud="urn:someone:else")(app, ti, other),
    "wrong scope": lambda app, ti, other: "Bearer " + _signed(scope="admin")(app, ti, other),
    "no subject": lambda app, ti, other: "Bearer " + _signed(sub=None)(app, ti, other),
    "no expiry": lambda app, ti, other: "Bearer " + _signed(exp=None)(app, ti, other),
}


@pytest.mark.parametrize("kind", list(BAD_AUTHORIZATION))
def test_bad_token_is_401_and_nothing_is_read_or_written(app, client, make_run, seeded, stored_rows, sql_statements,
                                                        ti_id, kind):
    other = make_run(run_id="other_run")["task"]
    make = BAD_AUTHORIZATION[kind]
    headers = {} if make is None else {"Authorization": make(app, ti_id, other)}

    for method in WORKER_CALLS:
        with sql_statements() as statements:
            response = worker_call(client, method, ti_id, "seed", headers, value="overwritten")

        assert response.status_code == 401, method
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "Refreshed-API-Token" not in response.headers
        error = detail(response)
        assert error["reason"] == "unauthenticated"
        assert error["message"]
        assert "secret-seed-value" not in response.get_data(as_text=True)
        assert statements == [], method  # not even the task instance was looked up
        assert stored_rows() == seeded, method


def test_expired_token_message_says_so(app, client, ti_id):
    response = client.get(key_url(ti_id, "k"), headers={"Authorization": "Bearer " + _expired(app, ti_id, None)})
    assert response.status_code == 401
    assert "expired" in detail(response)["message"]


@pytest.mark.parametrize("method", WORKER_CALLS)
def test_another_task_instances_token_is_403_and_nothing_is_read_or_written(
        client, make_run, worker_auth, ti_id, seeded, stored_rows, sql_statements, method):
    other = make_run(run_id="other_run")["task"]

    with sql_statements() as statements:
        response = worker_call(client, method, ti_id, "seed", worker_auth(other), value="overwritten")

    assert response.status_code == 403
    error = detail(response)
    assert error["reason"] == "forbidden"
    assert "secret-seed-value" not in response.get_data(as_text=True)
    assert statements == []
    assert stored_rows() == seeded


def test_another_task_instances_token_does_not_reveal_whether_a_ti_exists(client, make_run, worker_auth, ti_id):
    other_token = worker_auth(make_run(run_id="other_run")["task"])
    assert client.get(key_url(str(uuid.uuid4()), "k"), headers=other_token).status_code == 403
    assert client.get(key_url(ti_id, "k"), headers=other_token).status_code == 403


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(app, client, ti_id, scheme):
    with app.app_context():
        token, _ = tokens.issue(ti_id)
    response = client.put(key_url(ti_id, "k"), data=put_body(1), headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 204


def test_auth_is_checked_before_the_request_is_validated(client, ti_id, seeded, stored_rows):
    response = client.put(key_url(ti_id, "k" * 600), data=b"{not json")
    assert response.status_code == 401
    assert stored_rows() == seeded


# --- token refresh ------------------------------------------------------------------------


def _token_near_its_end(app, ti_id):
    lifetime = app.config["TASKSTORE"].token_lifetime_seconds
    with app.app_context():
        # 85% of the lifetime used: less than a fifth is left.
        token, expires_at = tokens.issue(ti_id, now=datetime.now(UTC) - timedelta(seconds=lifetime * 0.85))
    return token, expires_at


@pytest.mark.parametrize("method", WORKER_CALLS + ["GET missing"])
def test_token_near_its_end_is_refreshed_and_the_new_one_works(app, client, ti_id, auth, stored_rows, method):
    assert client.put(key_url(ti_id, "k"), data=put_body("v"), headers=auth).status_code == 204
    old, old_expiry = _token_near_its_end(app, ti_id)

    if method == "GET missing":
        response = client.get(key_url(ti_id, "absent"), headers={"Authorization": f"Bearer {old}"})
        assert response.status_code == 404
    else:
        response = worker_call(client, method, ti_id, "k", {"Authorization": f"Bearer {old}"})
        assert response.status_code in (200, 204)

    fresh = response.headers.get("Refreshed-API-Token")
    assert fresh and fresh != old
    claims = jwt.decode(fresh, app.config["SECRET_KEY"], algorithms=["HS256"], audience=tokens.AUDIENCE)
    assert claims["sub"] == ti_id
    assert datetime.fromtimestamp(claims["exp"], UTC) > old_expiry

    # The new token is good for further calls, and is itself fresh enough not to be replaced.
    headers = {"Authorization": f"Bearer {fresh}"}
    response = client.put(key_url(ti_id, "after"), data=put_body("refreshed"), headers=headers)
    assert response.status_code == 204
    assert "Refreshed-API-Token" not in response.headers
    assert client.get(key_url(ti_id, "after"), headers=headers).get_json() == {"value": "refreshed"}


@pytest.mark.parametrize("method", WORKER_CALLS)
def test_fresh_token_is_not_refreshed(app, client, ti_id, auth, method):
    assert client.put(key_url(ti_id, "k"), data=put_body("v"), headers=auth).status_code == 204
    lifetime = app.config["TASKSTORE"].token_lifetime_seconds
    with app.app_context():
        # Half the lifetime used: more than a fifth is left.
        half_used, _ = tokens.issue(ti_id, now=datetime.now(UTC) - timedelta(seconds=lifetime * 0.5))
    for headers in (auth, {"Authorization": f"Bearer {half_used}"}):
        response = worker_call(client, method, ti_id, "k", headers)
        assert response.status_code in (200, 204)
        assert "Refreshed-API-Token" not in response.headers


# --- headers Airflow's client sends -------------------------------------------------------


@pytest.mark.parametrize("method", WORKER_CALLS)
def test_airflow_api_version_header_is_accepted(client, ti_id, auth, stored_rows, method):
    headers = {**auth, "airflow-api-version": "2026-06-30", "Content-Type": "application/json",
               "Accept": "application/json", "User-Agent": "apache-airflow-task-sdk/1.3.0"}
    assert client.put(key_url(ti_id, "k"), data=put_body("v"), headers=headers).status_code == 204
    response = worker_call(client, method, ti_id, "k", headers, value="w")
    assert response.status_code in (200, 204)
    expected = {"GET": ['"v"'], "PUT": ['"w"'], "DELETE": [], "CLEAR": []}[method]
    assert [row.value for row in stored_rows()] == expected


# --- sizes --------------------------------------------------------------------------------


def test_body_over_the_hard_limit_is_413_and_nothing_is_written(make_app, ti_id, stored_rows):
    app = make_app(max_request_bytes=2048)
    client = app.test_client()
    with app.app_context():
        token, _ = tokens.issue(ti_id)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.put(key_url(ti_id, "k"), data=put_body("before"), headers=auth).status_code == 204

    just_under = put_body("x" * 2000)
    assert len(just_under) <= 2048
    assert client.put(key_url(ti_id, "fits"), data=just_under, headers=auth).status_code == 204

    response = client.put(key_url(ti_id, "k"), data=put_body("x" * 3000), headers=auth)
    assert response.status_code == 413
    error = detail(response)
    assert error["reason"] == "payload_too_large"
    assert "2048" in error["message"]
    assert {row.key: row.value for row in stored_rows()} == {"k": '"before"', "fits": json.dumps("x" * 2000)}


def test_chunked_body_over_the_hard_limit_is_413_not_a_truncated_parse(make_app, ti_id, stored_rows):
    """Without Content-Length (chunked upload) the limit must still give 413, never a body cut short."""
    app = make_app(max_request_bytes=2048)
    with app.app_context():
        token, _ = tokens.issue(ti_id)
    auth = {"Authorization": f"Bearer {token}"}
    streaming = {"wsgi.input_terminated": True}  # what gunicorn sets for a chunked request

    def put_streamed(body: bytes):
        return app.test_client().put(key_url(ti_id, "k"), input_stream=io.BytesIO(body),
                                     headers={**auth, "Transfer-Encoding": "chunked"},
                                     environ_overrides=streaming)

    # Whitespace padding: a body cut at the limit would still parse, and be stored.
    response = put_streamed(b'{"value": "sneaky"}' + b" " * 4000)
    assert response.status_code == 413
    assert detail(response)["reason"] == "payload_too_large"
    response = put_streamed(put_body("x" * 3000).encode())
    assert response.status_code == 413
    assert stored_rows() == []

    exactly = put_body("y" * (2048 - 13)).encode()
    assert len(exactly) == 2048
    assert put_streamed(exactly).status_code == 204
    assert put_streamed(b'{"value": "small"}').status_code == 204
    assert [row.value for row in stored_rows()] == ['"small"']


def test_value_over_the_soft_limit_is_stored_with_a_warning(client, ti_id, auth, stored_rows, caplog, app):
    limit = app.config["TASKSTORE"].max_value_bytes
    assert limit == 65535
    big = "x" * (limit + 5000)
    with caplog.at_level(logging.WARNING, logger="webapp"):
        response = client.put(key_url(ti_id, "big"), data=put_body(big), headers=auth)
    assert response.status_code == 204
    warnings = [record for record in caplog.records
                if record.levelno == logging.WARNING and record.name == "webapp.store"]
    assert len(warnings) == 1
    assert "max_value_bytes" in warnings[0].getMessage()
    assert "big" in warnings[0].getMessage()
    assert client.get(key_url(ti_id, "big"), headers=auth).get_json() == {"value": big}
    [row] = stored_rows()
    assert len(row.value) == limit + 5002


def test_value_under_the_soft_limit_logs_no_warning(client, ti_id, auth, caplog):
    with caplog.at_level(logging.WARNING, logger="webapp"):
        assert client.put(key_url(ti_id, "k"), data=put_body("x" * 60000), headers=auth).status_code == 204
    assert [record for record in caplog.records
            if record.levelno >= logging.WARNING and record.name.startswith("webapp")] == []


# --- a database that is down or locked ----------------------------------------------------


@pytest.fixture
def unreachable_database_url(migrated_database, tmp_path):
    database = make_url(migrated_database)
    if database.get_backend_name() == "sqlite":
        return "sqlite:///" + str(tmp_path / "no-such-folder" / "taskstore.db")
    return database.set(port=1).render_as_string(hide_password=False)


@pytest.mark.parametrize("method", WORKER_CALLS)
def test_database_down_is_a_quick_503_with_json(make_app, unreachable_database_url, ti_id, method):
    app = make_app(database_url=unreachable_database_url, db_connect_timeout_seconds=2, db_pool_timeout_seconds=1)
    with app.app_context():
        token, _ = tokens.issue(ti_id)

    started = time.monotonic()
    response = worker_call(app.test_client(), method, ti_id, "k", {"Authorization": f"Bearer {token}"})
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    error = detail(response)
    assert error["reason"] == "database_unavailable"
    assert error["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed < 10


@pytest.fixture
def sqlite_write_lock(migrated_database):
    """Hold SQLite's write lock from another connection, as a busy writer would."""
    database = make_url(migrated_database)
    if database.get_backend_name() != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    holder = sqlite3.connect(database.database, isolation_level=None, timeout=5)

    class Lock:
        def acquire(self):
            holder.execute("BEGIN IMMEDIATE")

        def release(self):
            if holder.in_transaction:
                holder.execute("ROLLBACK")

    lock = Lock()
    try:
        yield lock
    finally:
        lock.release()
        holder.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "CLEAR"])
def test_locked_sqlite_database_is_a_503_and_nothing_is_half_written(make_app, ti_id, auth, seeded, stored_rows,
                                                                      sqlite_write_lock, method):
    app = make_app(sqlite_busy_timeout_ms=200)
    client = app.test_client()

    sqlite_write_lock.acquire()
    try:
        started = time.monotonic()
        response = worker_call(client, method, ti_id, "seed", auth, value="overwritten")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert detail(response)["reason"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
        assert elapsed < 10
    finally:
        sqlite_write_lock.release()

    assert stored_rows() == seeded
    # Once the lock is gone the same app works again.
    response = worker_call(client, method, ti_id, "seed", auth, value="overwritten")
    assert response.status_code == 204
    assert [row.value for row in stored_rows()] == (['"overwritten"'] if method == "PUT" else [])


# --- through a real server ---------------------------------------------------------------


def test_through_gunicorn_non_utf8_key_and_chunked_upload(live_server, ti_id, auth, stored_rows):
    """What the test client cannot show: raw path bytes and a chunked body, as gunicorn passes them."""
    with httpx.Client(base_url=live_server, headers=auth, timeout=30) as http:
        response = http.put(f"{WORKER_API}/{ti_id}/bad%FFkey", content=put_body(1))
        assert response.status_code == 422
        assert response.json()["detail"]["field"] == "key"

        response = http.put(f"{WORKER_API}/{ti_id}/%2Fleading//key%0A", content=put_body(1))
        assert response.status_code == 422
        assert "U+000A" in response.json()["detail"]["message"]

        response = http.put(f"{WORKER_API}/{ti_id}/%2Fleading//key", content=put_body("slashes"))
        assert response.status_code == 204
        assert http.get(f"{WORKER_API}/{ti_id}/%2Fleading%2F%2Fkey").json() == {"value": "slashes"}

        def chunks(body: bytes):
            for start in range(0, len(body), 64 * 1024):
                yield body[start:start + 64 * 1024]

        too_big = b'{"value": "sneaky"}' + b" " * (1024 * 1024)
        response = http.put(f"{WORKER_API}/{ti_id}/chunked", content=chunks(too_big))
        assert response.status_code == 413
        assert response.json()["detail"]["reason"] == "payload_too_large"

        response = http.put(f"{WORKER_API}/{ti_id}/chunked", content=chunks(put_body("streamed").encode()))
        assert response.status_code == 204
    assert {row.key: row.value for row in stored_rows()} == {"/leading//key": '"slashes"', "chunked": '"streamed"'}


# --- SQL statements per call --------------------------------------------------------------


# A read and a write find the task instance in the same statement; a delete looks it up only
# when nothing was deleted, to tell "no such key" (fine) from "no such task instance" (404).
STATEMENTS_PER_CALL = {"GET": 1, "GET missing": 1, "PUT": 1, "PUT overwrite": 1, "DELETE": 1, "DELETE missing": 2,
                       "CLEAR": 2}


@pytest.mark.parametrize("method", list(STATEMENTS_PER_CALL))
def test_sql_statements_per_worker_call(client, ti_id, auth, sql_statements, method):
    # Warm up the connection so that first-connect queries are not counted.
    assert client.put(key_url(ti_id, "k"), data=put_body("v"), headers=auth).status_code == 204

    with sql_statements() as statements:
        if method.endswith(" missing"):
            response = worker_call(client, method.split()[0], ti_id, "absent", auth)
        elif method == "PUT overwrite":
            response = client.put(key_url(ti_id, "k"), data=put_body("w"), headers=auth)
        else:
            response = worker_call(client, method, ti_id, "new" if method == "PUT" else "k", auth)

    assert response.status_code == (404 if method == "GET missing" else 200 if method == "GET" else 204)
    assert len(statements) == STATEMENTS_PER_CALL[method], statements


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "{ti}/k"), ("PATCH", "{ti}/k"), ("POST", "{ti}"), ("PATCH", "{ti}"),
])
def test_wrong_method_is_405_with_json(client, ti_id, auth, seeded, stored_rows, method, path):
    response = client.open(f"{WORKER_API}/" + path.format(ti=ti_id), method=method, data=put_body(1), headers=auth)
    assert response.status_code == 405
    error = detail(response)
    assert error["reason"] == "method_not_allowed"
    assert "Allow" in response.headers
    assert stored_rows() == seeded


@pytest.mark.parametrize("path", ["/execution", "/execution/", "/execution/nope", "/execution/store",
                                  "/execution/store/ti", "/execution/store/task/x/k", "/execution/task-instances/x"])
def test_unknown_path_under_execution_is_404_json(client, auth, path):
    response = client.get(path, headers=auth)
    assert response.status_code == 404
    assert detail(response)["reason"] == "not_found"
