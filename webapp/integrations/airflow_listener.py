"""Airflow listener hooks reporting DAG-run and task-instance states to Task Store, so its
run pages show what Airflow did: states, try numbers (retries share their keys), and
``TASKSTORE_CLEAR_ON_SUCCESS`` clearing a task instance's keys when Airflow says it succeeded.

Registered by ``webapp.integrations.airflow_plugin.TaskStorePlugin`` (entry point
``airflow.plugins``). Hooks, as Airflow 3 defines them:

- ``on_task_instance_running`` / ``_success`` / ``_failed`` / ``_skipped`` (in the task's
  process; ``_failed`` also covers a try that will be retried: it reports ``up_for_retry``
  when the task instance says so);
- ``on_dag_run_running`` / ``_success`` / ``_failed`` (in the scheduler): the run's task
  instances and their states, so tasks that never ran (upstream_failed, skipped by a branch)
  and reports a worker could not send still land;
- ``before_stopping``: a stopping process (the task runner) waits up to
  ``[taskstore] report_flush_timeout`` seconds for its queued reports.

A listener must never fail or hold up a task. A hook only puts a report on a bounded queue
(dropping it, with a warning, when the queue is full) and returns; a daemon thread sends the
reports in order through the service API (``PUT /api/v2/service/tasks/.../state``), retrying
connection errors and 5xx with backoff a bounded number of times (``[taskstore]
report_retries`` attempts), and logs every report it drops. Nothing here raises into Airflow.
The run hooks read the run's task instances through the session the run is attached to (one
query to Airflow's own database, in the scheduler); the TI hooks read nothing.

Settings: ``[taskstore] url`` and ``api_key`` as for the backend (without them the listener
stays silent), ``report_states`` (True; False turns the listener off), ``report_queue_size``
(10000), ``report_retries`` (6), ``report_flush_timeout`` (5).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pluggy import HookimplMarker

from webapp.client import TaskStoreError
from webapp.integrations.service_client import (
    NO_AIRFLOW,
    ServiceClient,
    TaskIdentity,
    airflow_conf,
    load_settings,
    read_option,
    setting_name,
)

hookimpl = HookimplMarker("airflow")
log = logging.getLogger(__name__)

# The task instance states the service knows ("none" is None); a test holds this to the service's list.
KNOWN_STATES = frozenset({
    "scheduled", "queued", "running", "success", "failed", "up_for_retry", "up_for_reschedule",
    "upstream_failed", "skipped", "removed", "deferred", "restarting", "awaiting_input",
})
DEFAULTS = {"report_queue_size": 10000, "report_retries": 6, "report_flush_timeout": 5.0}
DEDUPE_SIZE = 10000


@dataclass(frozen=True)
class StateReport:
    task: TaskIdentity
    state: str | None
    try_number: int | None


class StateReporter:
    """A bounded queue of state reports and the daemon thread that sends them, in order.

    ``submit`` never blocks and never raises; ``flush`` waits (bounded) for the queue to
    empty. A report identical to the last one queued for the same task instance from this
    process is skipped (the run hooks repeat what the task hooks said), unless that one was
    dropped."""

    def __init__(self, client: ServiceClient, *, queue_size: int = 10000, flush_timeout: float = 5.0):
        self.client = client
        self.flush_timeout = flush_timeout
        self._queue: queue.Queue[StateReport] = queue.Queue(maxsize=max(1, queue_size))
        self._last: OrderedDict[TaskIdentity, tuple[str | None, int | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0

    def submit(self, report: StateReport) -> bool:
        """Queue a report; False when it was skipped (a repeat) or dropped (queue full)."""
        try:
            with self._lock:
                said = (report.state, report.try_number)
                if self._last.get(report.task) == said:
                    return False
                self._last[report.task] = said
                self._last.move_to_end(report.task)
                while len(self._last) > DEDUPE_SIZE:
                    self._last.popitem(last=False)
                self._start()
            self._queue.put_nowait(report)
            return True
        except queue.Full:
            self.dropped += 1
            self._forget(report)
            log.warning("Task Store: state report queue full (%d); dropped %s", self._queue.maxsize, _describe(report))
            return False
        except Exception:  # never into Airflow
            log.exception("Task Store: could not queue %s", _describe(report))
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued report was sent or dropped, at most ``timeout`` seconds
        (``flush_timeout`` by default); False when some are still waiting."""
        deadline = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("Task Store: %d state report(s) not sent before the process stops",
                                self._queue.unfinished_tasks)
                    return False
                done.wait(remaining)
        return True

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="taskstore-state-reports", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            report = self._queue.get()
            try:
                self._send(report)
            finally:
                self._queue.task_done()

    def _send(self, report: StateReport) -> None:
        try:
            self.client.report_state(report.task, report.state, report.try_number)
            self.sent += 1
        except TaskStoreError as exc:  # retried already (connection errors, 5xx), or refused (4xx)
            self.dropped += 1
            self._forget(report)
            log.warning("Task Store: dropped %s: %s", _describe(report), exc)
        except Exception:
            self.dropped += 1
            self._forget(report)
            log.exception("Task Store: dropped %s", _describe(report))

    def _forget(self, report: StateReport) -> None:
        """A report that did not arrive is not a repeat: the same one later is sent again."""
        with self._lock:
            if self._last.get(report.task) == (report.state, report.try_number):
                del self._last[report.task]


def _describe(report: StateReport) -> str:
    dag_id, run_id, task_id, map_index = report.task
    return (f"state report {report.state or 'none'} (try {report.try_number}) of "
            f"{dag_id}/{run_id}/{task_id}[{map_index}]")


# --- the process's reporter --------------------------------------------------------------------

_reporter_lock = threading.Lock()
_reporter_state: dict[str, Any] = {"pid": None, "reporter": None}


def _after_fork_in_child() -> None:
    # A forked task runner starts afresh: the parent's thread is not there, and a lock some
    # other thread of the parent held at the fork would never be released.
    global _reporter_lock
    _reporter_lock = threading.Lock()
    _reporter_state.update(pid=None, reporter=None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _truthy(raw: str | None, default: bool) -> bool:
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on", "t", "y")


def _build_reporter() -> StateReporter | None:
    conf = airflow_conf() or NO_AIRFLOW
    if not _truthy(read_option("report_states", conf), True):
        log.info("Task Store: %s is off; not reporting states", setting_name("report_states"))
        return None
    if read_option("url", conf) is None:
        log.debug("Task Store: %s is not set; not reporting states", setting_name("url"))
        return None
    try:
        numbers = {}
        for option, default in DEFAULTS.items():
            raw = read_option(option, conf)
            numbers[option] = default if raw is None else type(default)(raw)
        settings = load_settings(conf=conf, retries=int(numbers["report_retries"]), retry_wait=0.5,
                                 retry_wait_max=10.0)
    except (TaskStoreError, ValueError) as exc:
        log.warning("Task Store: not reporting states: %s", exc)
        return None
    reporter = StateReporter(ServiceClient(settings), queue_size=int(numbers["report_queue_size"]),
                             flush_timeout=float(numbers["report_flush_timeout"]))
    atexit.register(reporter.flush)  # registered in this process (a forked task runner runs its own)
    return reporter


def get_reporter() -> StateReporter | None:
    """This process's reporter, built on first use (again in a forked child: the parent's
    thread does not exist there); None when reporting is off or not configured."""
    pid = os.getpid()
    with _reporter_lock:
        if _reporter_state["pid"] != pid:
            _reporter_state["pid"] = pid
            _reporter_state["reporter"] = _build_reporter()
        return _reporter_state["reporter"]


def set_reporter(reporter: StateReporter | None) -> None:
    """Use this reporter in this process instead of one built from the settings (tests, or a
    program embedding the listener); None turns reporting off."""
    with _reporter_lock:
        _reporter_state.update(pid=os.getpid(), reporter=reporter)


def reset() -> None:
    """Forget the reporter: the next hook builds one from the settings again."""
    with _reporter_lock:
        _reporter_state.update(pid=None, reporter=None)


# --- what Airflow hands over ---------------------------------------------------------------------


def _state(value: Any) -> str | None:
    value = getattr(value, "value", value)
    return None if value is None else str(value)


def _identity(ti: Any) -> TaskIdentity:
    map_index = getattr(ti, "map_index", -1)
    return TaskIdentity(str(ti.dag_id), str(ti.run_id), str(ti.task_id), -1 if map_index is None else int(map_index))


def _try_number(ti: Any) -> int | None:
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) and not isinstance(number, bool) and number >= 1 else None


def _report(ti: Any, state: str | None) -> None:
    """Queue one task instance's state; never raises."""
    try:
        if state is not None and state not in KNOWN_STATES:
            log.debug("Task Store: state %r is not one the service knows; not reported", state)
            return
        reporter = get_reporter()
        if reporter is not None:
            reporter.submit(StateReport(_identity(ti), state, _try_number(ti)))
    except Exception:
        log.exception("Task Store: could not report a task instance's state")


def _report_run(dag_run: Any) -> None:
    """Queue the state of each of the run's task instances; never raises."""
    try:
        if get_reporter() is None:
            return
        for ti in _task_instances(dag_run):
            _report(ti, _state(ti.state))
    except Exception:
        log.exception("Task Store: could not report the task instances of a DAG run")


def _task_instances(dag_run: Any) -> list[Any]:
    # Through the session the run is attached to: no second connection to Airflow's database
    # while the scheduler holds its transaction. A detached run reports nothing.
    from sqlalchemy.orm import object_session  # Airflow's own SQLAlchemy, in Airflow's processes

    session = object_session(dag_run)
    if session is None:
        log.debug("Task Store: DAG run %s is not attached to a session; its task instances are not reported",
                  getattr(dag_run, "run_id", "?"))
        return []
    return list(dag_run.get_task_instances(session=session))


# --- the hooks --------------------------------------------------------------------------------


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _report(task_instance, "running")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _report(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any) -> None:
    # Airflow calls this hook for a try that will be retried too; the task instance says which.
    # (No ``error`` argument: a hook may take fewer arguments than its spec, and Airflow before
    # 2.10 has no ``error``.)
    up_for_retry = _state(getattr(task_instance, "state", None)) == "up_for_retry"
    _report(task_instance, "up_for_retry" if up_for_retry else "failed")


@hookimpl
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _report(task_instance, "skipped")


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _report_run(dag_run)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _report_run(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _report_run(dag_run)


@hookimpl
def before_stopping(component: Any) -> None:
    try:
        with _reporter_lock:
            reporter = _reporter_state["reporter"] if _reporter_state["pid"] == os.getpid() else None
        if reporter is not None:
            reporter.flush()
    except Exception:
        log.exception("Task Store: could not flush state reports")
