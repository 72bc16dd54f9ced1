"""A page of keys stays in step with what a person does on it: inline Save, Extend, Delete and
Add answer the row plus the key count and the history (out-of-band swaps); a delete offers
Undo; keys sort by key, update or expiry; the history filters and pages."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from support import csrf_token, ti_page_url
from webapp.models import utcnow

HTMX = {"HX-Request": "true"}
PAGE = ti_page_url()


@pytest.fixture
def editor(login_as, ti_id):
    return login_as("editor")


def version_of(html: str) -> str:
    return unescape(re.search(r'name="version"[^>]*value="([^"]+)"', html).group(1))


def oob(html: str, element_id: str) -> str:
    """The out-of-band element with this id in an htmx answer (its opening tag to its end)."""
    match = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*hx-swap-oob="[^"]+"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no out-of-band #{element_id} in the answer"
    return match.group(2)


def key_count(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", oob(html, "key-count")).split())


def history_actions(html: str) -> list[str]:
    body = re.search(r'<tbody>(.*?)</tbody>', oob(html, "history"), re.S).group(1)
    return [re.sub(r"<[^>]+>.*", "", cells[2]).strip() for cells in
            (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S))]


def delete_inline(client, key: str) -> str:
    confirm = client.get(ti_page_url(action="delete", key=key), headers=HTMX).text
    response = client.post(ti_page_url(action="delete", key=key), headers=HTMX,
                           data={"csrf_token": csrf_token(confirm), "version": version_of(confirm)})
    assert response.status_code == 200, response.text
    return response.text


def undo_field(html: str) -> str:
    return re.search(r'name="change" value="(\d+)"', html).group(1)


def keys_of(html: str) -> list[str]:
    return re.findall(r'<td class="key"><code>([^<]*)</code>', html)


# --- inline actions keep the count and the history in step -----------------------------------


def test_an_inline_save_answers_the_row_the_count_and_the_history(editor, ti_id, worker_put):
    worker_put(ti_id, "a", 1)
    worker_put(ti_id, "b", 2)
    form = editor.get(ti_page_url(action="edit", key="a"), headers=HTMX).text
    answer = editor.post(ti_page_url(action="edit", key="a"), headers=HTMX, data={
        "csrf_token": csrf_token(form), "version": version_of(form), "value": "5", "expiration": "keep"}).text
    assert answer.lstrip().startswith("<tr") and "Saved." in answer
    assert key_count(answer) == "2"
    assert history_actions(answer) == ["value changed"]


def test_an_inline_delete_offers_undo_and_undo_puts_value_and_expiry_back(editor, ti_id, worker_put, stored_rows):
    expiry = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    worker_put(ti_id, "job", {"id": "j-17"}, expiry)
    worker_put(ti_id, "other", 1)
    answer = delete_inline(editor, "job")
    assert 'class="deleted"' in answer and "Deleted key <code>job</code>." in answer and ">Undo</button>" in answer
    assert key_count(answer) == "1" and history_actions(answer) == ["deleted"]
    assert [row.key for row in stored_rows()] == ["other"]

    restored = editor.post(ti_page_url(action="undo", key="job"), headers=HTMX,
                           data={"csrf_token": csrf_token(answer), "change": undo_field(answer)})
    assert restored.status_code == 200 and "Restored." in restored.text
    assert key_count(restored.text) == "2" and history_actions(restored.text) == ["restored", "deleted"]
    row = {row.key: row for row in stored_rows()}["job"]
    assert (row.value, row.expires_at) == ('{"id":"j-17"}', expiry)


def test_undo_is_refused_when_a_worker_wrote_the_key_since(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "job", "old")
    answer = delete_inline(editor, "job")
    worker_put(ti_id, "job", "new")  # the worker started over meanwhile
    refused = editor.post(ti_page_url(action="undo", key="job"), headers=HTMX,
                          data={"csrf_token": csrf_token(answer), "change": undo_field(answer)})
    assert refused.status_code == 409 and "written again since it was deleted" in refused.text
    assert [(row.key, row.value) for row in stored_rows()] == [("job", '"new"')]


def test_undo_is_refused_once_the_key_was_changed_again_through_the_ui(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "job", "old")
    first = delete_inline(editor, "job")
    worker_put(ti_id, "job", "again")
    delete_inline(editor, "job")  # a later delete: undoing the first one would bring back the wrong value
    refused = editor.post(ti_page_url(action="undo", key="job"), headers=HTMX,
                          data={"csrf_token": csrf_token(first), "change": undo_field(first)})
    assert refused.status_code == 409 and "can no longer be undone" in refused.text
    assert stored_rows() == []


def test_undo_without_javascript_is_offered_on_the_page_after_the_redirect(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "job", "old")
    confirm = editor.get(ti_page_url(action="delete", key="job")).text
    response = editor.post(ti_page_url(action="delete", key="job"),
                           data={"csrf_token": csrf_token(confirm), "version": version_of(confirm)})
    assert response.status_code == 303 and "undo=" in response.headers["Location"]
    page = editor.get(response.headers["Location"]).text
    assert "Deleted key <code>job</code>." in page and ">Undo</button>" in page
    restored = editor.post(ti_page_url(action="undo", key="job"),
                           data={"csrf_token": csrf_token(page), "change": undo_field(page)})
    assert restored.status_code == 303 and [row.value for row in stored_rows()] == ['"old"']
    after = editor.get(restored.headers["Location"]).text
    assert "Restored key" in after and ">Undo</button>" not in after  # nothing left to undo


def test_an_undo_naming_another_scopes_delete_restores_nothing(editor, make_run, worker_put, stored_rows):
    tis = make_run(run_id="run_2", tasks=[("one", None), ("two", None)])
    worker_put(tis["one"], "k", 1)
    confirm = editor.get(ti_page_url(run_id="run_2", task_id="one", action="delete", key="k")).text
    deleted = editor.post(ti_page_url(run_id="run_2", task_id="one", action="delete", key="k"),
                          data={"csrf_token": csrf_token(confirm), "version": version_of(confirm)})
    change_id = re.search(r"undo=(\d+)", deleted.headers["Location"]).group(1)
    refused = editor.post(ti_page_url(run_id="run_2", task_id="two", action="undo", key="k"),
                          data={"csrf_token": csrf_token(confirm), "change": change_id})
    assert refused.status_code == 303
    assert "can no longer be undone" in editor.get(refused.headers["Location"]).text
    assert stored_rows() == []


def test_an_inline_extend_moves_the_history_along(editor, ti_id, worker_put):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(hours=2))
    page = editor.get(PAGE).text
    answer = editor.post(ti_page_url(action="extend", key="k"), headers=HTMX,
                         data={"csrf_token": csrf_token(page), "version": version_of(page), "by": "1d"}).text
    assert "Extended by 1 day." in answer and history_actions(answer) == ["extended"]


def test_add_with_htmx_inserts_the_row_and_empties_the_form(editor, ti_id, worker_put):
    worker_put(ti_id, "existing", 1)
    page = editor.get(PAGE).text
    assert 'hx-post="' + PAGE + '"' in page and 'hx-target="#key-rows"' in page
    answer = editor.post(PAGE, headers=HTMX, data={"csrf_token": csrf_token(page), "key": "new", "value": '{"a": 1}',
                                                   "expiration": "never", "expires_at": ""})
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith("<tr") and keys_of(answer.text)[0] == "new" and "Added." in answer.text
    assert key_count(answer.text) == "2" and history_actions(answer.text) == ["created"]
    emptied = oob(answer.text, "add-key-section")
    assert 'name="key"' in emptied and 'value="new"' not in emptied


def test_a_refused_add_with_htmx_comes_back_in_place_with_its_errors(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "existing", 1)
    page = editor.get(PAGE).text
    answer = editor.post(PAGE, headers=HTMX, data={"csrf_token": csrf_token(page), "key": "existing",
                                                   "value": "2", "expiration": "never", "expires_at": ""})
    assert answer.status_code == 422
    assert answer.headers["HX-Retarget"] == "#add-key-section" and answer.headers["HX-Reswap"] == "outerHTML"
    assert 'id="add-key-section"' in answer.text and "already exists" in answer.text
    assert [row.value for row in stored_rows()] == ["1"]


def test_the_polled_rows_bring_the_count_along(editor, ti_id, worker_put, set_ti_state):
    set_ti_state("dag", "run_1", "task", "running")
    worker_put(ti_id, "a", 1)
    worker_put(ti_id, "b", 1, utcnow() - timedelta(seconds=1))  # already expired
    rows = editor.get(PAGE, headers=HTMX)
    assert rows.status_code == 200 and key_count(rows.text) == "1 + 1 expired"


# --- sorting ---------------------------------------------------------------------------------


def test_keys_sort_by_key_update_and_expiry(editor, ti_id, worker_put):
    now = utcnow()
    worker_put(ti_id, "b", 1, now + timedelta(days=1))
    worker_put(ti_id, "c", 1)  # never expires
    worker_put(ti_id, "a", 1, now + timedelta(days=9))
    assert keys_of(editor.get(PAGE).text) == ["a", "b", "c"]
    assert keys_of(editor.get(ti_page_url(sort="-key")).text) == ["c", "b", "a"]
    assert keys_of(editor.get(ti_page_url(sort="-updated")).text) == ["a", "c", "b"]
    assert keys_of(editor.get(ti_page_url(sort="updated")).text) == ["b", "c", "a"]
    assert keys_of(editor.get(ti_page_url(sort="expires")).text) == ["b", "a", "c"]  # never: last
    assert keys_of(editor.get(ti_page_url(sort="-expires")).text) == ["a", "b", "c"]


def test_the_column_headings_link_the_orders_and_say_which_is_current(editor, ti_id, worker_put):
    worker_put(ti_id, "a", 1)
    page = editor.get(ti_page_url(sort="-updated")).text
    assert re.search(r'<th scope="col" aria-sort="descending">\s*<a href="[^"]*sort=updated', page)
    assert 'href="' + PAGE + '?sort=expires"' in page.replace("&amp;", "&")


def test_an_unknown_order_is_refused_naming_the_parameter(editor):
    response = editor.get(ti_page_url(sort="value"))
    assert response.status_code == 422 and "sort" in response.text


# --- the history: labels, filter, pages ------------------------------------------------------


def save(client, key: str, value: str, expiration: str = "keep", expires_at: str = ""):
    page = client.get(ti_page_url(action="edit", key=key)).text
    response = client.post(ti_page_url(action="edit", key=key), data={
        "csrf_token": csrf_token(page), "version": version_of(page), "value": value, "expiration": expiration,
        "expires_at": expires_at})
    assert response.status_code == 303, response.text


def history_of(client, **query) -> str:
    return client.get(ti_page_url(**query), headers={**HTMX, "HX-Target": "history"}).text


def test_history_names_expiry_only_changes_and_extends(editor, ti_id, worker_put):
    worker_put(ti_id, "k", 1, utcnow() + timedelta(days=1))
    save(editor, "k", "1", "never")  # the same value: only the expiry changed
    save(editor, "k", "2")
    save(editor, "k", "2", "1d")  # an expiry again, so it can be extended
    page = editor.get(PAGE).text
    editor.post(ti_page_url(action="extend", key="k"), data={"csrf_token": csrf_token(page),
                                                              "version": version_of(page), "by": "1h"})
    fragment = history_of(editor)
    assert fragment.lstrip().startswith("<section") and 'id="history"' in fragment  # the section alone
    assert re.findall(r"<td>([a-z ]+ed)</td>", fragment) == ["extended", "expiry changed", "value changed",
                                                             "expiry changed"]


def test_history_filters_by_key_person_and_action_and_pages(editor, ti_id, worker_put, login_as, app, monkeypatch):
    from webapp.ui import keys as key_pages  # noqa: PLC0415
    monkeypatch.setattr(key_pages, "HISTORY_ROWS", 3)
    for number in range(5):
        worker_put(ti_id, f"job_{number}", number)
        save(editor, f"job_{number}", str(number + 10))
    worker_put(ti_id, "other", 1)
    delete_inline(editor, "other")

    by_key = history_of(editor, history_key="JOB_3")  # contains, any case
    assert re.findall(r"<code>(job_\d|other)</code>", by_key) == ["job_3"]
    deletes = history_of(editor, history_action="delete")
    assert re.findall(r'<td class="key"><code>([^<]+)', deletes) == ["other"]
    assert "No change matches this filter." in history_of(editor, history_actor="nobody")

    first = history_of(editor)
    assert re.findall(r'<td class="key"><code>([^<]+)', first) == ["other", "job_4", "job_3"]
    older = unescape(re.search(r'<a href="([^"]+)"[^>]*>Older →', first).group(1))
    second = editor.get(older, headers={**HTMX, "HX-Target": "history"}).text
    assert re.findall(r'<td class="key"><code>([^<]+)', second) == ["job_2", "job_1", "job_0"]
    assert "Older →" not in second and ">Newest</a>" in second


def test_a_bad_history_filter_is_refused_naming_it(editor):
    response = editor.get(ti_page_url(history_action="rename"))
    assert response.status_code == 422 and "action" in response.text


# --- Clear, inline -----------------------------------------------------------------------------


def test_clear_with_htmx_confirms_in_place_and_answers_the_emptied_table(editor, ti_id, worker_put, stored_rows):
    for key in ("a", "b"):
        worker_put(ti_id, key, 1)
    confirm = editor.get(ti_page_url(action="clear"), headers=HTMX)
    assert confirm.status_code == 200 and "<html" not in confirm.text and "start over" in confirm.text
    assert 'hx-target="#clear-slot"' in confirm.text and 'data-close="#clear-slot"' in confirm.text
    assert stored_rows() != []  # asking is not clearing

    cleared = editor.post(ti_page_url(action="clear"), headers=HTMX, data={"csrf_token": csrf_token(confirm.text)})
    assert cleared.status_code == 200 and "Cleared 2 keys of this task instance." in cleared.text
    rows = oob(cleared.text, "key-rows")
    assert 'class="no-keys"' in rows and "No live keys." in rows
    assert key_count(cleared.text) == "0" and history_actions(cleared.text) == ["cleared", "cleared"]
    assert stored_rows() == []


def test_clear_without_javascript_is_still_a_page_and_a_redirect(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "a", 1)
    confirm = editor.get(ti_page_url(action="clear"))
    assert "<html" in confirm.text and "data-close" not in confirm.text
    response = editor.post(ti_page_url(action="clear"), data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 303 and stored_rows() == []


def test_adding_a_key_whose_expired_row_awaits_cleanup_creates_it_anew(editor, ti_id, worker_put, stored_rows):
    worker_put(ti_id, "job", "stale", utcnow() - timedelta(seconds=1))  # expired: gone for every reader
    page = editor.get(PAGE).text
    response = editor.post(PAGE, data={"csrf_token": csrf_token(page), "key": "job", "value": '"fresh"',
                                       "expiration": "never", "expires_at": ""})
    assert response.status_code == 303, response.text
    assert [(row.key, row.value, row.expires_at) for row in stored_rows()] == [("job", '"fresh"', None)]
