"""Deadlock retries: InnoDB can deadlock two upserts racing on one key; the loser's work is
rolled back and run again, and nothing of the failed attempt survives."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from webapp import store
from webapp.transactions import committed, committed_on_connection


def deadlock() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception(1213, "Deadlock found when trying to get lock"))


def failing_first(times: int, error, write, *, writes_before_failing: bool):
    """Work that fails its first ``times`` attempts. The ORM session's unit of work may write
    and then fail (it must be rolled back); the worker's is one statement in autocommit on
    PostgreSQL, which fails whole, so it fails before it writes."""
    attempts = []

    def work(*connection):
        attempts.append(len(attempts) + 1)
        failing = len(attempts) <= times
        if writes_before_failing or not failing:
            write(f"attempt {len(attempts)}", *connection)
        if failing:
            raise error()
        return len(attempts)

    return work, attempts


def core_write(ti_id):
    return lambda value, connection: store.write(store.TASK_INSTANCE_BY_ID, value, "1", None, connection=connection,
                                                 ti_id=uuid.UUID(ti_id))


def session_write(ti_id):
    return lambda value: store.write(store.TASK_INSTANCE_BY_ID, value, "1", None, ti_id=uuid.UUID(ti_id))


RUNNERS = [(committed_on_connection, core_write), (committed, session_write)]


@pytest.mark.parametrize("runner,writer", RUNNERS, ids=["worker connection", "orm session"])
def test_a_deadlocked_unit_of_work_is_run_again_and_only_the_last_attempt_lands(app, ti_id, stored_rows,
                                                                                runner, writer):
    work, attempts = failing_first(2, deadlock, writer(ti_id), writes_before_failing=runner is committed)
    with app.app_context():
        assert runner(work) == 3
    assert attempts == [1, 2, 3]
    assert [row.key for row in stored_rows()] == ["attempt 3"]


@pytest.mark.parametrize("runner,writer", RUNNERS, ids=["worker connection", "orm session"])
def test_retries_stop_after_the_last_attempt_and_the_error_comes_out(app, ti_id, stored_rows, runner, writer):
    work, attempts = failing_first(99, deadlock, writer(ti_id), writes_before_failing=runner is committed)
    with app.app_context(), pytest.raises(OperationalError):
        runner(work, attempts=3)
    assert attempts == [1, 2, 3]
    assert stored_rows() == []


@pytest.mark.parametrize("runner,writer", RUNNERS, ids=["worker connection", "orm session"])
def test_other_database_errors_are_not_retried(app, ti_id, stored_rows, runner, writer):
    def integrity_error():
        return IntegrityError("INSERT ...", {}, Exception(1062, "Duplicate entry"))

    work, attempts = failing_first(1, integrity_error, writer(ti_id), writes_before_failing=runner is committed)
    with app.app_context(), pytest.raises(IntegrityError):
        runner(work)
    assert attempts == [1]
    assert stored_rows() == []
