"""Writers to one SQLite file take turns through ``database.SQLiteWriterQueue`` instead of
sleeping in SQLite's busy handler. Each process has its own place in the queue, a stuck queue
is a quick 503 as a locked database is, and reads never queue."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from sqlalchemy.engine import make_url

from support import detail, worker_call
from webapp.database import WRITER_QUEUE


@pytest.fixture
def sqlite_only(migrated_database):
    if make_url(migrated_database).get_backend_name() != "sqlite":
        pytest.skip("the writer queue is for SQLite files; servers have row locks")


def hold_turn(queue, held, release):
    with queue.turn():
        held.set()
        release.wait(10)


def test_a_writer_in_another_process_waits_for_its_turn(sqlite_only, app):
    queue = app.extensions[WRITER_QUEUE]
    with queue.turn():
        pass  # the parent has opened its lock file before the fork: the child must open its own
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    child = context.Process(target=hold_turn, args=(queue, held, release))
    child.start()
    try:
        assert held.wait(10)
        waiter_started = time.monotonic()
        timer = context.Process(target=_set_after, args=(release, 0.3))  # the child lets go in 0.3 s
        timer.start()
        with queue.turn():
            waited = time.monotonic() - waiter_started
        timer.join(5)
    finally:
        release.set()
        child.join(10)
    assert waited >= 0.25, "the parent got its turn while the child still held it"
    assert child.exitcode == 0


def _set_after(event, seconds):
    time.sleep(seconds)
    event.set()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "CLEAR"])
def test_a_write_stuck_behind_the_queue_is_a_quick_503_and_then_works(sqlite_only, make_app, ti_id, auth, seeded,
                                                                      stored_rows, method):
    app = make_app(sqlite_busy_timeout_ms=200)
    client = app.test_client()
    queue = app.extensions[WRITER_QUEUE]

    with queue.turn():  # another thread of this process is writing, for longer than the busy timeout
        started = time.monotonic()
        response = worker_call(client, method, ti_id, "seed", auth, value="overwritten")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert detail(response)["reason"] == "database_unavailable"
        assert response.headers["Retry-After"] == "1"
        assert 0.15 < elapsed < 5
        assert stored_rows() == seeded

        assert worker_call(client, "GET", ti_id, "seed", auth).status_code == 200  # reads do not queue

    assert worker_call(client, method, ti_id, "seed", auth, value="overwritten").status_code == 204


def test_a_refused_write_gives_up_its_turn(sqlite_only, make_app, worker_auth):
    app = make_app(sqlite_busy_timeout_ms=200)
    client = app.test_client()
    unknown = "00000000-0000-4000-8000-000000000000"
    response = worker_call(client, "PUT", unknown, "k", worker_auth(unknown))
    assert response.status_code == 404  # raised inside its turn, by the write itself
    with app.extensions[WRITER_QUEUE].turn():  # 503 after 200 ms had the refused write kept it
        pass


def test_servers_and_in_memory_sqlite_have_no_writer_queue(make_app, migrated_database):
    backend = make_url(migrated_database).get_backend_name()
    assert (make_app().extensions[WRITER_QUEUE] is None) == (backend != "sqlite")
    assert make_app(database_url="sqlite://").extensions[WRITER_QUEUE] is None
