"""Fuzzing, in-process through the WSGI app (the same code gunicorn runs).

- Hypothesis properties of the worker API: any JSON value round-trips exactly or gets a 422;
  any key (text) works the same for set, get and delete or gets a 422; never a 5xx, never an
  error that is not JSON, and a rejected request writes nothing. Likewise for the admin API's
  bodies (stored keys, run creation, state changes).
- schemathesis against the served OpenAPI document (/api/v2/openapi.json), every operation,
  with valid credentials (a worker token of a real task instance for /execution, an admin
  API key for /api/v2): no 5xx, and every status, content type, header and body as documented.

Example counts are modest and the generation is derandomized, so a run is repeatable and the
file takes well under a minute."""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import canonical, key_url, store_url
from webapp import models

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])
API = "/api/v2"

json_scalars = (st.booleans() | st.integers() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
                | st.floats() | st.text(alphabet=st.characters(codec=None), max_size=20))
json_values = st.recursive(
    st.none() | json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def is_storable(value) -> bool:
    """The contract: any JSON value but null; NaN, ±Infinity and lone surrogates cannot be stored."""
    if value is None:
        return False

    def fine(item) -> bool:
        if isinstance(item, float):
            return math.isfinite(item)
        if isinstance(item, str):
            return not any(0xD800 <= ord(c) <= 0xDFFF for c in item)
        if isinstance(item, list):
            return all(fine(x) for x in item)
        if isinstance(item, dict):
            return all(fine(k) and fine(v) for k, v in item.items())
        return True

    return fine(value)


def assert_json_error(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.mimetype == "application/json", response.text[:300]
    detail = response.get_json()["detail"]
    assert detail["reason"] and detail["message"]
    return detail


def encode_body(body) -> bytes:
    """JSON as a client would send it; NaN and Infinity as the non-standard tokens Python writes."""
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def is_valid_key(key: str) -> bool:
    import unicodedata
    return 0 < len(key) <= models.KEY_LENGTH and not any(unicodedata.category(c) == "Cc" for c in key)


# --- the worker API -------------------------------------------------------------------------


def test_any_json_value_round_trips_exactly_or_is_a_422(client, ti_id, auth, stored_rows):
    @FUZZ
    @given(value=json_values, expires_at=st.none() | st.datetimes(timezones=st.timezones() | st.none()).map(
        lambda d: d.isoformat()) | st.text(max_size=12))
    def check(value, expires_at):
        before = stored_rows()
        response = client.put(key_url(ti_id, "k"), headers=auth,
                              data=encode_body({"value": value, "expires_at": expires_at}))
        if response.status_code == 204:
            assert is_storable(value)
            got = client.get(key_url(ti_id, "k"), headers=auth)
            assert got.status_code in (200, 404)  # 404: an expiry in the past
            if got.status_code == 200:
                assert canonical(got.get_json()["value"]) == canonical(value)
                # the exact text too: 3 stays 3 and 3.0 stays 3.0
                assert got.get_data(as_text=True) == '{"value":' + json.dumps(
                    value, ensure_ascii=False, separators=(",", ":")) + "}"
            assert client.delete(key_url(ti_id, "k"), headers=auth).status_code == 204
        else:
            assert_json_error(response, 422)
            assert stored_rows() == before  # nothing written
        assert stored_rows() == []

    check()


def test_storable_values_always_round_trip(client, ti_id, auth):
    @FUZZ
    @given(value=json_values.filter(is_storable))
    def check(value):
        response = client.put(key_url(ti_id, "k"), headers=auth, data=encode_body({"value": value}))
        assert response.status_code == 204, response.text
        assert canonical(client.get(key_url(ti_id, "k"), headers=auth).get_json()["value"]) == canonical(value)

    check()


def test_any_key_works_for_set_get_delete_or_is_a_422(client, ti_id, auth, stored_rows):
    @FUZZ
    @given(key=st.text(max_size=20) | st.text(min_size=500, max_size=530)
           | st.text(alphabet=st.sampled_from("/.%?#& \\\t\x00é😀"), max_size=8))
    def check(key):
        put = client.put(key_url(ti_id, key), headers=auth, data=b'{"value": "v"}')
        if not is_valid_key(key):
            assert_json_error(put, 422)
            assert_json_error(client.get(key_url(ti_id, key), headers=auth), 422)
            assert_json_error(client.delete(key_url(ti_id, key), headers=auth), 422)
            assert stored_rows() == []
            return
        assert put.status_code == 204, (key, put.text)
        assert [row.key for row in stored_rows()] == [key]  # stored exactly as sent
        got = client.get(key_url(ti_id, key), headers=auth)
        assert got.status_code == 200 and got.get_json() == {"value": "v"}
        assert client.delete(key_url(ti_id, key), headers=auth).status_code == 204
        assert_json_error(client.get(key_url(ti_id, key), headers=auth), 404)
        assert stored_rows() == []

    check()


def test_arbitrary_put_bodies_are_stored_or_refused_with_json(client, ti_id, auth, stored_rows):
    @FUZZ
    @given(body=st.binary(max_size=40) | json_values.map(encode_body)
           | st.dictionaries(st.sampled_from(["value", "expires_at", "extra", "Value"]), json_values,
                             max_size=3).map(encode_body))
    def check(body):
        response = client.put(key_url(ti_id, "k"), headers=auth, data=body)
        if response.status_code == 204:
            assert client.delete(key_url(ti_id, "k"), headers=auth).status_code == 204
        else:
            assert_json_error(response, 422)
        assert stored_rows() == []

    check()


# --- the admin API ----------------------------------------------------------------------------


def test_admin_key_bodies_are_stored_as_sent_or_refused_with_json(client, ti_id, admin_auth, stored_rows):
    editor = admin_auth("editor")

    @FUZZ
    @given(body=st.fixed_dictionaries({}, optional={
        "value": json_values,
        "expires_at": st.sampled_from(["default", None, "2999-01-01T00:00:00Z", "2999-01-01T00:00:00",
                                       "2000-01-01T00:00:00Z", "tomorrow", 5]),
        "extra": json_values,
    }), method=st.sampled_from(["PUT", "PATCH"]))
    def check(body, method):
        before = stored_rows()
        response = client.open(store_url("k"), method=method, headers=editor, data=encode_body(body))
        if response.status_code in (200, 201):
            assert canonical(response.get_json()["value"]) == canonical(body["value"])
            assert client.delete(store_url("k"), headers=editor).status_code == 204
        elif response.status_code == 404:
            assert method == "PATCH"  # PATCH of a key that does not exist
            assert_json_error(response, 404)
        else:
            assert_json_error(response, 422)
            assert stored_rows() == before
        assert stored_rows() == []

    check()


names = st.text(max_size=6) | st.sampled_from(["r1", "", "x" * 251]) | json_values
tasks = st.lists(st.fixed_dictionaries({"task_id": names}, optional={
    "map_indexes": st.none() | st.lists(st.integers(-3, 3) | json_scalars, max_size=3) | json_values,
    "other": json_values}) | json_values, max_size=3) | json_values


def test_admin_run_bodies_are_accepted_or_refused_with_json(client, make_run, admin_auth, table_contents):
    make_run()  # dag/run_1 exists: creating it again is a 409
    admin = admin_auth("admin")

    @FUZZ
    @given(body=st.fixed_dictionaries({}, optional={
        "dag_run_id": names | st.just("run_1"), "logical_date": st.none() | st.text(max_size=12)
        | st.just("2024-01-01T00:00:00+02:00") | json_scalars, "tasks": tasks, "extra": json_values,
    }) | json_values)
    def check(body):
        before = table_contents()
        response = client.post(f"{API}/dags/dag/dagRuns", headers=admin, data=encode_body(body))
        if response.status_code == 201:
            created = response.get_json()
            assert created["dag_run_id"] == body["dag_run_id"]
            deleted = client.delete(f"{API}/dags/dag/dagRuns/{quote(created['dag_run_id'], safe='')}", headers=admin)
            assert deleted.status_code == 204, deleted.text
        else:
            assert_json_error(response, 409, 422)
        assert table_contents() == before

    check()


def test_admin_state_bodies_are_accepted_or_refused_with_json(app, client, ti_id, admin_auth):
    admin = admin_auth("admin")
    url = f"{API}/dags/dag/dagRuns/run_1/taskInstances/task"
    states = st.sampled_from(["running", "success", "failed", "none", None, "RUNNING", "up_for_retry", "bogus"])

    @FUZZ
    @given(body=st.fixed_dictionaries({}, optional={"state": states | json_values, "extra": json_values})
           | json_values)
    def check(body):
        before = client.get(url, headers=admin).get_json()
        response = client.patch(url, headers=admin, data=encode_body(body))
        if response.status_code == 200:
            assert set(body) == {"state"}
        else:
            assert_json_error(response, 422)
            assert client.get(url, headers=admin).get_json() == before

    check()


# --- schemathesis against the served OpenAPI document ---------------------------------------------


def schemathesis_failures(app, headers_for, path_parameters: dict, examples: int) -> list[str]:
    """Run every documented operation through schemathesis; return what failed, one line each."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance]
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        real = {name: value for name, value in path_parameters.items()
                if name in {p.name for p in operation.path_parameters}}
        # Generated path parameters mostly find nothing (404s); the real ones reach the body checks.
        strategy = operation.as_strategy() | operation.as_strategy(path_parameters=real)
        seen: list[str] = []

        @settings(FUZZ, max_examples=examples)
        @given(case=strategy)
        def run(case):
            headers = headers_for(operation.path)
            response = case.call(app=app, headers=headers)
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except Exception as exc:  # collected, so one run reports every operation that fails
                line = f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {str(exc)[:400]}"
                if line not in seen:
                    seen.append(line)

        run()
        failures += seen[:3]
    assert operations >= 20
    return failures


@pytest.mark.slow  # about 7 s
def test_schemathesis_every_operation_conforms_to_the_served_document(app, make_run, worker_auth, admin_auth):
    ti = make_run(tasks=(("task", None),))["task"]
    worker, admin = worker_auth(ti), admin_auth("admin")

    def headers_for(path: str) -> dict:
        return worker if path.startswith("/execution") else admin

    real = {"ti_id": ti, "dag_id": "dag", "run_id": "run_1", "task_id": "task"}
    failures = schemathesis_failures(app, headers_for, real, examples=25)
    assert failures == [], "\n".join(failures)


def test_integer_query_parameters_of_any_size_are_never_a_5xx(client, make_run, admin_auth, login_as):
    """Numbers past the 32-bit columns overflowed in the database (a 500) in both the admin API
    and the UI before int_arg bounded them."""
    make_run()
    admin = admin_auth("viewer")
    login_as("viewer", "quinn")  # the UI pages below answer the client's session
    urls = [f"{API}/dags", f"{API}/dags/dag/dagRuns", f"{API}/dags/dag/dagRuns/run_1/taskInstances",
            f"{API}/dags/dag/dagRuns/run_1/taskInstances/task",
            store_url(),
            "/dags/dag", "/dags/dag/runs/run_1", "/dags/dag/runs/run_1/tasks/task", "/search"]

    @settings(FUZZ, max_examples=40)
    @given(url=st.sampled_from(urls), name=st.sampled_from(["map_index", "limit", "offset", "before", "after"]),
           number=st.integers() | st.integers(min_value=2**31 - 2, max_value=2**63 + 2))
    def check(url, name, number):
        headers = admin if url.startswith(API) else {}
        response = client.get(url, headers=headers, query_string={name: str(number), "q": "k"})
        assert response.status_code < 500, (url, name, number)

    check()


# Any character a path segment or query parameter can carry, NUL and the lone surrogate's
# neighbours included (invalid UTF-8 is covered byte by byte in test_hardening.py).
segments = (st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8)
            | st.sampled_from(["a\x00b", "\x00", " ", "%", "..", "x" * 300, "é😀"]))


def test_any_text_in_any_path_or_query_is_never_a_5xx(client, make_run, admin_auth, login_as):
    """Names reach SQL in every lookup: on PostgreSQL a NUL in one was a 500 (its text columns
    cannot hold NUL), on SQLite a search for one was a 503. Every answer is below 500 and,
    from the API, JSON."""
    make_run()
    admin = admin_auth("editor")
    login_as("editor", "pat")
    templates = [f"{API}/dags/{{dag}}/dagRuns", f"{API}/dags/dag/dagRuns/{{run}}",
                 f"{API}/dags/dag/dagRuns/{{run}}/taskInstances",
                 f"{API}/dags/dag/dagRuns/run_1/taskInstances/{{task}}",
                 f"{API}/dags/dag/dagRuns/run_1/taskInstances/task/state-store/{{key}}",
                 f"{API}/users/{{dag}}", f"{API}/apiKeys/{{dag}}/revoke",
                 "/dags/{dag}", "/dags/dag/runs/{run}", "/dags/dag/runs/run_1/tasks/{task}",
                 "/dags/dag/runs/run_1/tasks/task/edit?key={key}", "/search?q={key}&dag_id={dag}"]

    @settings(FUZZ, max_examples=80)
    @given(template=st.sampled_from(templates), text=segments,
           method=st.sampled_from(["GET", "PATCH", "DELETE", "POST"]))
    def check(template, text, method):
        url = template.format(dag=quote(text, safe=""), run=quote(text, safe=""), task=quote(text, safe=""),
                              key=quote(text, safe=""))
        is_api = url.startswith(API)
        response = client.open(url, method=method if is_api else "GET", headers=admin if is_api else {},
                               json={"value": 1} if is_api and method in ("PATCH", "POST") else None)
        assert response.status_code < 500, (url, method, response.status_code)
        if is_api and response.status_code != 204:
            assert response.mimetype == "application/json", (url, method)

    check()
