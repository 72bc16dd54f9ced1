"""Request logs as an operator reads them on stderr: one line per request (JSON or text) with
time, request id, method, route template, status, duration and who called; X-Request-ID taken
from the caller when it is sane, made up otherwise, and sent back; every record logged while a
request is answered carrying its id; an unhandled error logged once, with its traceback."""

from __future__ import annotations

import json
import re
import sys
import uuid

import httpx
import pytest

from servers import start_server
from support import PASSWORD, key_url, log_in, store_url
from webapp import store
from webapp.request_log import JsonFormatter, TextFormatter, formatter_for

WORKER_ROUTE = "/execution/store/ti/<ti_id>/<storekey:key>"
HEX_ID = re.compile(r"[0-9a-f]{32}")


def json_lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def request_lines(err: str) -> list[dict]:
    return [line for line in json_lines(err) if line["logger"] == "webapp.request"]


@pytest.fixture
def json_app(make_app):
    return make_app(log_format="json")


def test_a_worker_call_logs_one_json_line_with_its_task_instance(json_app, ti_id, worker_auth, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    response = client.put(key_url(ti_id, "spark/job"), json={"value": 1}, headers=worker_auth(ti_id))
    assert response.status_code == 204
    [line] = request_lines(capsys.readouterr().err)
    assert line["level"] == "INFO" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert (line["method"], line["route"], line["status"]) == ("PUT", WORKER_ROUTE, 204)
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 10_000
    assert line["ti_id"] == ti_id
    assert "principal" not in line and "spark" not in json.dumps(line), "the route template, never the raw path"


def test_admin_calls_name_the_api_key_or_the_person(json_app, make_user, capsys):
    from webapp.auth import api_keys
    from webapp.extensions import db

    with json_app.app_context():
        _record, key = api_keys.create("deploy-bot", "viewer")
        db.session.commit()
    client = json_app.test_client()
    capsys.readouterr()
    assert client.get("/api/v2/dags", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    [line] = request_lines(capsys.readouterr().err)
    assert (line["route"], line["status"], line["principal"]) == ("/api/v2/dags", 200, "api-key:deploy-bot")
    assert "ti_id" not in line

    make_user("dora", "viewer")
    assert log_in(client, "dora", PASSWORD).status_code == 302
    capsys.readouterr()
    assert client.get("/").status_code == 200
    [line] = request_lines(capsys.readouterr().err)
    assert (line["route"], line["principal"]) == ("/", "dora")


def test_text_lines_for_a_terminal(make_app, ti_id, worker_auth, capsys):
    client = make_app(log_format="text").test_client()
    capsys.readouterr()
    response = client.get(key_url(ti_id, "nothing"), headers={**worker_auth(ti_id), "X-Request-ID": "abc-123"})
    assert response.status_code == 404
    [line] = [text for text in capsys.readouterr().err.splitlines() if " webapp.request " in text]
    assert re.fullmatch(rf"\S+Z INFO webapp\.request \[abc-123\] GET {re.escape(WORKER_ROUTE)} 404 \d+\.\d ms "
                        rf"ti_id={ti_id}", line), line


def test_auto_is_text_on_a_terminal_and_json_otherwise(make_app, monkeypatch):
    settings = make_app().config["TASKSTORE"]
    assert settings.log_format == "auto"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(formatter_for(settings), TextFormatter)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(formatter_for(settings), JsonFormatter)


@pytest.mark.parametrize("given, kept", [
    ("trace-7f3a/2026", True),
    ("x" * 128, True),
    ("x" * 129, False),  # too long
    ("", False),
    ("caf\u00e9", False),  # not ASCII
    ("a\x01b", False),  # a control character
])
def test_the_request_id_is_the_callers_when_sane_and_sent_back(json_app, capsys, given, kept):
    client = json_app.test_client()
    capsys.readouterr()
    response = client.get("/health", headers={"X-Request-ID": given})
    assert response.status_code == 200
    echoed = response.headers["X-Request-ID"]
    if kept:
        assert echoed == given
    else:
        assert HEX_ID.fullmatch(echoed)
    [line] = request_lines(capsys.readouterr().err)
    assert line["request_id"] == echoed


def test_without_one_each_request_gets_a_new_id(json_app):
    client = json_app.test_client()
    ids = {client.get("/health").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(HEX_ID.fullmatch(rid) and uuid.UUID(rid).version == 4 for rid in ids)
    assert HEX_ID.fullmatch(client.get("/no/such/page").headers["X-Request-ID"])  # refusals too


def test_a_record_logged_while_answering_carries_the_request_id(json_app, ti_id, worker_auth, capsys):
    client = json_app.test_client()
    capsys.readouterr()
    big = "x" * (json_app.config["TASKSTORE"].max_value_bytes + 10)
    response = client.put(key_url(ti_id, "big"), json={"value": big}, headers=worker_auth(ti_id))
    assert response.status_code == 204
    lines = json_lines(capsys.readouterr().err)
    [warning] = [line for line in lines if line["level"] == "WARNING"]
    assert warning["logger"] == "webapp.store" and "max_value_bytes" in warning["message"]
    assert warning["request_id"] == response.headers["X-Request-ID"]


def test_an_unhandled_error_is_logged_once_with_its_traceback_and_request_id(json_app, ti_id, worker_auth, capsys,
                                                                             monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(store, "read_value_json", broken)
    client = json_app.test_client()
    capsys.readouterr()
    response = client.get(key_url(ti_id, "k"), headers={**worker_auth(ti_id), "X-Request-ID": "incident-42"})
    assert response.status_code == 500 and response.json["detail"]["reason"] == "internal_error"
    assert "the disk caught fire" not in response.text
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1, err
    assert err.count("RuntimeError: the disk caught fire") == 1, err
    [error] = [line for line in json_lines(err) if line["level"] == "ERROR"]
    assert error["request_id"] == "incident-42" and "RuntimeError: the disk caught fire" in error["exception"]
    [line] = request_lines(err)
    assert (line["status"], line["request_id"]) == (500, "incident-42")


def test_warning_level_leaves_the_request_lines_out(make_app, capsys, admin_auth):
    client = make_app(log_format="json", log_level="warning").test_client()  # any case
    capsys.readouterr()
    assert client.get("/health").status_code == 200
    assert client.get(store_url("k"), headers=admin_auth()).status_code == 404
    assert request_lines(capsys.readouterr().err) == []


def test_a_bad_setting_is_refused_naming_it(make_app):
    from webapp.config import ConfigError

    for setting, bad in (("log_format", "xml"), ("log_level", "LOUD"), ("metrics", "maybe")):
        with pytest.raises(ConfigError, match=f"TASKSTORE_{setting.upper()}"):
            make_app(**{setting: bad})


def test_the_server_writes_one_json_line_per_request_to_stderr(migrated_database, tmp_path, ti_id, worker_auth):
    server = start_server(migrated_database, tmp_path / "server", workers=2, threads=2)
    try:
        with httpx.Client(base_url=server.base_url, headers=worker_auth(ti_id), timeout=30) as http:
            assert http.put(key_url(ti_id, "k"), json={"value": 1}, headers={"X-Request-ID": "from-the-worker"}) \
                .status_code == 204
            echoed = http.get(key_url(ti_id, "k")).headers["X-Request-ID"]
    finally:
        server.stop()
    lines = server.log().splitlines()
    assert all(line.startswith("{") for line in lines if line.strip()), "every line JSON, gunicorn's own too"
    requests = request_lines(server.log())
    put = [line for line in requests if line["request_id"] == "from-the-worker"]
    get = [line for line in requests if line["request_id"] == echoed]
    assert len(put) == 1 and len(get) == 1, requests
    assert (put[0]["method"], put[0]["route"], put[0]["status"], put[0]["ti_id"]) == ("PUT", WORKER_ROUTE, 204, ti_id)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_line_written_directly_reads_as_one_that_went_through_logging(make_app, ti_id, worker_auth, capsys,
                                                                       monkeypatch, log_format):
    """With no handler but ours (a server), the request hook writes its line itself; with another
    one listening (pytest's, here) the line goes through logging: the two must read alike."""
    import logging

    app = make_app(log_format=log_format)
    client = app.test_client()
    lines = []
    for root_handlers in (list(logging.root.handlers), []):
        monkeypatch.setattr(logging.root, "handlers", root_handlers)
        capsys.readouterr()
        client.get(key_url(ti_id, "missing"), headers={**worker_auth(ti_id), "X-Request-ID": "same-id"})
        [line] = [text for text in capsys.readouterr().err.splitlines() if "webapp.request" in text]
        lines.append(line)
    through_logging, direct = lines
    timestamp = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z|\d+\.\d+ ms|\"duration_ms\": [\d.]+|duration_ms=[\d.]+")
    assert timestamp.sub("T", direct) == timestamp.sub("T", through_logging)
