"""The search page as one types: results alone for htmx (the URL follows), the DAG box's
suggestions, and a DAG id that names no DAG said so, with the DAGs whose id contains it."""

from __future__ import annotations

import re
from html import unescape

import pytest

from support import table_rows
from webapp.store import search


def seed(make_run, worker_put):
    daily = make_run("ml_training_daily", "run_1", tasks=(("train", None),))
    weekly = make_run("ml_training_weekly", "run_1", tasks=(("train", None),))
    secret = make_run("finance_close", "run_1", tasks=(("post", None),))
    worker_put(daily["train"], "checkpoint/epoch", {"epoch": 3})
    worker_put(weekly["train"], "checkpoint/epoch", {"epoch": 9})
    worker_put(secret["post"], "checkpoint/ledger", {"rows": 1})


def without_times(rows: list[list[str]]) -> list[list[str]]:
    """Result rows without the Updated cell: its relative time ("a moment ago") may move on
    between two answers."""
    return [row[:6] + row[7:] for row in rows]


def test_htmx_gets_the_results_alone_and_a_browser_the_page(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    page = viewer.get("/search?q=checkpoint")
    fragment = viewer.get("/search?q=checkpoint", headers={"HX-Request": "true"})
    assert "<html" in page.text and 'id="search-results"' in page.text
    assert "<html" not in fragment.text and "<form" not in fragment.text
    found = table_rows(fragment.text)
    assert [row[4] for row in found[1:]] == ["checkpoint/ledger", "checkpoint/epoch", "checkpoint/epoch"]
    assert without_times(found) == without_times(table_rows(page.text)[:len(found)])
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    assert 'hx-push-url="true"' in page.text and 'hx-target="#search-results"' in page.text


def test_results_link_their_dag_and_run_and_show_the_value_and_how_long_ago(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    html = login_as("viewer").get("/search?q=checkpoint&dag_id=ml_training_daily").text
    [header, row] = table_rows(html)[:2]
    assert header[:8] == ["DAG", "Run", "Task", "Map index", "Key", "Value", "Updated", "Expires"]
    assert row[5] == '{"epoch":3}' and row[6].endswith("ago")
    assert '<a href="/dags/ml_training_daily">ml_training_daily</a>' in html
    assert '<a href="/dags/ml_training_daily/runs/run_1">run_1</a>' in html


def test_the_dag_box_suggests_the_dags_there_are(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    html = login_as("viewer").get("/search").text
    suggested = re.findall(r'<option value="([^"]+)">', html[html.index('<datalist id="dag-ids">'):])
    assert suggested == ["finance_close", "ml_training_daily", "ml_training_weekly"]
    assert 'list="dag-ids"' in html


def test_a_dag_id_naming_no_dag_says_so_and_offers_the_ones_containing_it(login_as, make_run, worker_put):
    seed(make_run, worker_put)
    viewer = login_as("viewer")
    html = viewer.get("/search?q=checkpoint&dag_id=ml_training").text
    assert "No DAG is named <code>ml_training</code>" in html
    assert re.findall(r'dag_id=(ml_training_\w+)"><code>', html) == ["ml_training_daily", "ml_training_weekly"]
    assert "0 keys found" in html

    nothing_like_it = viewer.get("/search?q=checkpoint&dag_id=nope").text
    assert "No DAG is named <code>nope</code>" in nothing_like_it and "Leave the box empty" in nothing_like_it
    exact = viewer.get("/search?q=checkpoint&dag_id=ml_training_daily").text
    assert "No DAG is named" not in exact


def test_someone_limited_to_some_dags_is_never_offered_the_others(app, make_run, worker_put, make_user, client):
    from support import log_in

    seed(make_run, worker_put)
    make_user("lena", "viewer", dags="ml_*")
    assert log_in(client, "lena").status_code == 302
    html = client.get("/search?q=checkpoint&dag_id=finance").text
    assert "finance_close" not in html and "No DAG is named <code>finance</code>" in html


def test_a_dag_is_found_however_many_ids_contain_its_own(login_as, make_run):
    for prefix in "abcdefghijkl":  # twelve ids containing "etl" that sort before it
        make_run(f"{prefix}_etl")
    make_run("etl")
    html = login_as("viewer").get("/search?q=x&dag_id=etl").text
    assert "No DAG is named" not in html


# --- also searching in values -------------------------------------------------------------------


def seed_values(make_run, worker_put):
    ti = make_run("ops", "run_1", tasks=(("load", None),))["load"]
    worker_put(ti, "status", {"state": "DONE", "rows": 12})
    worker_put(ti, "done_marker", 1)
    worker_put(ti, "done_and_said", "all done")
    worker_put(ti, "unrelated", {"state": "running"})
    return ti


def found(html: str, table: int = 0) -> dict[str, str]:
    """The keys of the task keys table (or the asset keys table: 1) with their "Found in"."""
    tables = re.findall(r"<table.*?</table>", html, re.S)
    return {row[-5 if table == 0 else 1]: row[-1] for row in table_rows(tables[table])[1:] if len(row) > 1}


def test_values_are_searched_only_when_asked_and_each_hit_says_where(login_as, make_run, worker_put):
    seed_values(make_run, worker_put)
    viewer = login_as("viewer")
    by_name = viewer.get("/search?q=done").text
    assert "Found in" not in by_name
    assert [row[4] for row in table_rows(by_name)[1:]] == ["done_and_said", "done_marker"]
    also_values = viewer.get("/search?q=done&in_values=1").text
    assert found(also_values) == {"status": "value", "done_marker": "key", "done_and_said": "key and value"}
    assert 'name="in_values" value="1" checked' in also_values and "slower on a big store" in also_values


def test_a_value_search_ignores_case_as_the_key_search_does(login_as, make_run, worker_put):
    seed_values(make_run, worker_put)
    assert found(login_as("viewer").get("/search?q=Done&in_values=1").text) == {
        "status": "value", "done_marker": "key", "done_and_said": "key and value"}


def test_htmx_gets_the_value_search_alone(login_as, make_run, worker_put):
    seed_values(make_run, worker_put)
    fragment = login_as("viewer").get("/search?q=running&in_values=1", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and found(fragment.text) == {"unrelated": "value"}


def test_value_search_pages_keep_searching_values(login_as, make_run, worker_put):
    ti = make_run()["task"]
    for number in range(51):
        worker_put(ti, f"k{number:02}", {"note": "needle"})
    viewer = login_as("viewer")
    first = viewer.get("/search?q=needle&in_values=1").text
    assert len(found(first)) == 50 and "1–50 of 51" in first
    next_url = unescape(re.search(r'href="([^"]+)">Next', first).group(1))
    assert "in_values=1" in next_url and len(found(viewer.get(next_url).text)) == 1


def test_asset_keys_are_searched_by_value_too(login_as, admin_auth, client):
    asset = client.post("/api/v2/assets", json={"name": "orders", "uri": "s3://orders"}, headers=admin_auth())
    asset_id = asset.get_json()["id"]
    response = client.put(f"/api/v2/assets/{asset_id}/state-store/watermark", json={"value": "2026-11-30/part-7"},
                          headers=admin_auth())
    assert response.status_code in (200, 201)
    html = login_as("viewer").get("/search?q=part-7&in_values=1").text
    assert found(html, table=1) == {"watermark": "value"}


def test_a_dag_limited_person_never_finds_other_dags_keys_by_value(app, make_run, worker_put, make_user, client):
    from support import log_in

    seed(make_run, worker_put)  # checkpoint keys in ml_* and finance_close, with "epoch" or "rows" in the values
    make_user("lena", "viewer", dags="ml_*")
    assert log_in(client, "lena").status_code == 302
    for headers in ({}, {"HX-Request": "true"}):
        html = client.get("/search?q=rows&in_values=1", headers=headers).text
        assert "finance_close" not in html and "0 keys found" in html
        assert "finance_close" not in client.get("/search?q=checkpoint&in_values=1", headers=headers).text


ODD_VALUES = {
    "percent": "100% sure", "nearpercent": "1000 sure",
    "underscore": "a_b", "nearunderscore": "axb",
    "backslash": "C:\\temp\\new", "quotes": 'say "hi"', "apostrophe": "it's",
    "unicode": "Grüße aus Köln 日本 😀", "slash": "a/b%c",
}


@pytest.mark.parametrize("text, expected", [
    ("100%", {"percent"}),
    ("a_b", {"underscore"}),
    ("%", {"percent", "slash"}),
    ("_", {"underscore"}),
    ("C:\\temp", {"backslash"}),
    ("\\", {"backslash", "quotes"}),  # quotes: stored as say \"hi\"
    ('say "hi"', {"quotes"}),
    ('"hi', {"quotes"}),
    ("it's", {"apostrophe"}),
    ("'", {"apostrophe"}),
    ("Köln 日本 😀", {"unicode"}),
    ("a/b%", {"slash"}),
    ("/", {"slash"}),
    ("'; DROP TABLE task_state; --", set()),
    ("%_\\'\"/" * 160, set()),  # 960 characters, each one a LIKE wildcard, an escape or a quote
])
def test_odd_text_matches_literally_in_values_and_never_errors(login_as, make_run, worker_put, text, expected):
    ti = make_run()["task"]
    for key, value in ODD_VALUES.items():
        worker_put(ti, key, value)
    viewer = login_as("viewer")
    response = viewer.get("/search", query_string={"q": text, "in_values": "1"})
    assert response.status_code == 200
    assert set(found(response.text)) == expected
    assert viewer.get("/search", query_string={"q": text}).status_code == 200  # names only


def test_a_text_past_the_limit_is_refused_naming_it(login_as):
    viewer = login_as("viewer")
    for query in ({"q": "x" * 1001, "in_values": "1"}, {"q": "%" * 60_000}):
        page = viewer.get("/search", query_string=query)
        fragment = viewer.get("/search", query_string=query, headers={"HX-Request": "true"})
        assert page.status_code == fragment.status_code == 422
        assert "<html" in page.text and "<html" not in fragment.text
        for html in (page.text, fragment.text):
            assert "Not searched: q: is" in html and "search for at most 1,000" in html
    assert viewer.get("/search", query_string={"q": "x" * 1000, "in_values": "1"}).status_code == 200


def test_a_common_word_within_a_dag_lists_its_newest_runs_keys_first(login_as, make_run, worker_put, monkeypatch):
    # Every word counts as common: on SQLite the search reads the DAG's keys, not the FTS5 table.
    monkeypatch.setattr(search, "WITHIN_FTS_CANDIDATES", 1)
    older = make_run("etl", "run_1", tasks=(("load", None),))
    newer = make_run("etl", "run_2", tasks=(("load", None),))
    other = make_run("reports", "run_9", tasks=(("load", None),))
    worker_put(newer["load"], "checkpoint/new_run", 1)
    worker_put(older["load"], "checkpoint/old_run", 2)  # the newest key, in the older run
    worker_put(other["load"], "checkpoint/elsewhere", 3)
    html = login_as("viewer").get("/search?q=checkpoint&dag_id=etl").text
    assert [(row[1], row[4]) for row in table_rows(html)[1:]] == [("run_2", "checkpoint/new_run"),
                                                                   ("run_1", "checkpoint/old_run")]
