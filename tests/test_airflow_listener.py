"""The listener plugin's hooks, in process: they register against Airflow's own hookspecs,
their reports reach the service in order (states, tries, TASKSTORE_CLEAR_ON_SUCCESS), and a
hook never raises and never waits for the network: a service that is down or slow costs
reports (logged), never a task. The reports go to an in-process app through httpx's WSGI
transport, so these run in every pass and fast; tests/test_airflow_end_to_end.py has the
listener in a real Airflow run.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import httpx
import pytest

from support import free_port

pytest.importorskip("airflow.listeners.spec.dagrun", reason="apache-airflow-core 3.3 is not installed")

from webapp.integrations import airflow_listener  # noqa: E402
from webapp.integrations.airflow_listener import StateReport, StateReporter  # noqa: E402
from webapp.integrations.service_client import ServiceClient, ServiceSettings, TaskIdentity  # noqa: E402

# Tests whose result does not depend on the test database run in the SQLite pass only.
ONE_PASS = pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")),
                              reason="does not depend on the test database: runs in the SQLite pass")


class FakeTI:
    """What a hook gets: Airflow's RuntimeTaskInstance (or TaskInstance) has these."""

    def __init__(self, task_id="copy", try_number=1, state=None, map_index=-1, dag_id="etl", run_id="manual__1"):
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.map_index, self.try_number, self.state = map_index, try_number, state


def client_into(app, key: str, **settings) -> ServiceClient:
    """A service client (API key ``key``) whose requests go to the in-process app."""
    options = {"retry_wait": 0.001, "retry_wait_max": 0.005, **settings}
    return ServiceClient(ServiceSettings("http://taskstore.test", key, **options),
                         transport=httpx.WSGITransport(app=app))


@pytest.fixture
def use_reporter():
    """Install a reporter for this process's hooks; forget it afterwards."""
    made: list[StateReporter] = []

    def _use(reporter: StateReporter) -> StateReporter:
        made.append(reporter)
        airflow_listener.set_reporter(reporter)
        return reporter

    yield _use
    for reporter in made:
        reporter.flush(timeout=5)
    airflow_listener.reset()


def api(client, admin_auth, path: str):
    response = client.get(path, headers=admin_auth("viewer"))
    assert response.status_code == 200, response.text
    return response.get_json()


@ONE_PASS
def test_the_hooks_register_against_airflows_own_hookspecs():
    from airflow._shared.listeners.listener import ListenerManager
    from airflow._shared.listeners.spec import lifecycle, taskinstance
    from airflow.listeners.spec import dagrun
    from airflow.sdk._shared.listeners.listener import ListenerManager as SDKListenerManager
    from airflow.sdk._shared.listeners.spec import lifecycle as sdk_lifecycle
    from airflow.sdk._shared.listeners.spec import taskinstance as sdk_taskinstance

    core = ListenerManager()
    for spec in (lifecycle, taskinstance, dagrun):
        core.add_hookspecs(spec)
    core.add_listener(airflow_listener)
    core.pm.check_pending()  # every hook we implement has a spec in Airflow's core ...
    sdk = SDKListenerManager()
    for spec in (sdk_lifecycle, sdk_taskinstance):
        sdk.add_hookspecs(spec)
    sdk.add_listener(airflow_listener)  # ... and the Task SDK's manager (the task runner) takes it
    hooks = {impl.function.__name__ for caller in core.pm.get_hookcallers(airflow_listener)
             for impl in caller.get_hookimpls()}
    assert hooks >= {"on_task_instance_running", "on_task_instance_success", "on_task_instance_failed",
                     "on_task_instance_skipped", "on_dag_run_running", "on_dag_run_success", "on_dag_run_failed",
                     "before_stopping"}


def test_reports_carry_states_and_tries_and_clear_on_success_clears(make_app, client, admin_auth, use_reporter,
                                                                     service_key):
    app = make_app(clear_on_success=True)
    service = client_into(app, service_key)
    reporter = use_reporter(StateReporter(service))
    hook = airflow_listener
    copy = TaskIdentity("etl", "manual__1", "copy")

    hook.on_task_instance_running(previous_state="queued", task_instance=FakeTI(try_number=1))
    assert reporter.flush(timeout=10)
    service.put_task_key(copy, "checkpoint", '{"done": 3}')
    hook.on_task_instance_failed(previous_state="running", task_instance=FakeTI(try_number=1, state="up_for_retry"))
    hook.on_task_instance_running(previous_state="queued", task_instance=FakeTI(try_number=2))
    assert reporter.flush(timeout=10)
    ti = api(client, admin_auth, "/api/v2/dags/etl/dagRuns/manual__1/taskInstances/copy")
    assert (ti["state"], ti["try_number"]) == ("running", 2)
    assert service.get_task_key(copy, "checkpoint") == '{"done": 3}'  # the retry resumes from it

    hook.on_task_instance_success(previous_state="running", task_instance=FakeTI(try_number=2))
    hook.on_task_instance_skipped(previous_state="running", task_instance=FakeTI("branch", try_number=1))
    hook.on_task_instance_failed(previous_state="running", task_instance=FakeTI("load", try_number=1, state="failed"))
    assert reporter.flush(timeout=10)
    assert service.get_task_key(copy, "checkpoint") is None  # TASKSTORE_CLEAR_ON_SUCCESS, on Airflow's word
    tries = api(client, admin_auth, "/api/v2/dags/etl/dagRuns/manual__1/taskInstances/copy/tries")["tries"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "up_for_retry"), (2, "success")]
    listed = api(client, admin_auth, "/api/v2/dags/etl/dagRuns/manual__1/taskInstances")["task_instances"]
    assert {t["task_id"]: t["state"] for t in listed} == {"copy": "success", "branch": "skipped", "load": "failed"}
    assert api(client, admin_auth, "/api/v2/dags/etl/dagRuns/manual__1")["state"] == "failed"
    assert (reporter.sent, reporter.dropped) == (6, 0)


def test_run_hooks_report_every_task_instance_and_skip_repeats(make_app, client, admin_auth, use_reporter,
                                                               monkeypatch, service_key):
    app = make_app()
    reporter = use_reporter(StateReporter(client_into(app, service_key)))
    airflow_listener.on_task_instance_success(previous_state="running", task_instance=FakeTI("extract"))
    tis = [FakeTI("extract", state="success"), FakeTI("transform", state="upstream_failed", try_number=0),
           FakeTI("mapped", state="removed", map_index=3), FakeTI("human", state="awaiting_input"),
           FakeTI("future", state="a_state_of_a_newer_airflow")]
    monkeypatch.setattr(airflow_listener, "_task_instances", lambda dag_run: tis)
    airflow_listener.on_dag_run_failed(dag_run=object(), msg="task_failure")
    assert reporter.flush(timeout=10)
    listed = api(client, admin_auth, "/api/v2/dags/etl/dagRuns/manual__1/taskInstances")["task_instances"]
    assert sorted((t["task_id"], t["map_index"], t["state"]) for t in listed) == [
        ("extract", -1, "success"), ("human", -1, "awaiting_input"), ("mapped", 3, "removed"),
        ("transform", -1, "upstream_failed")]
    # "extract" was reported once (the run hook repeated it); a state the service does not know is left out
    assert reporter.sent == 4


@ONE_PASS
def test_a_hook_never_raises_nor_waits_when_the_service_is_down(use_reporter, caplog):
    down = ServiceClient(ServiceSettings(f"http://127.0.0.1:{free_port()}", "k", retries=3, retry_wait=0.01))
    reporter = use_reporter(StateReporter(down))
    caplog.set_level(logging.WARNING, logger=airflow_listener.__name__)
    started = time.monotonic()
    airflow_listener.on_task_instance_running(previous_state=None, task_instance=FakeTI())
    assert time.monotonic() - started < 0.05  # queued, not sent
    assert reporter.flush(timeout=10)
    assert (reporter.sent, reporter.dropped) == (0, 1)
    assert "dropped state report running (try 1) of etl/manual__1/copy[-1]" in caplog.text
    assert "after 3 attempts" in caplog.text
    # A dropped report is not a repeat: the same report later (the run hook's) is tried again.
    assert reporter.submit(StateReport(TaskIdentity("etl", "manual__1", "copy"), "running", 1))
    assert reporter.flush(timeout=10) and reporter.dropped == 2


@ONE_PASS
def test_a_full_queue_drops_reports_with_a_warning_and_the_flush_is_bounded(use_reporter, caplog):
    release = threading.Event()

    def stuck(request):  # a service that hangs until released
        release.wait(10)
        return httpx.Response(200, json={})

    slow = ServiceClient(ServiceSettings("http://taskstore.test", "k", retries=1),
                         transport=httpx.MockTransport(stuck))
    reporter = use_reporter(StateReporter(slow, queue_size=1, flush_timeout=0.2))
    caplog.set_level(logging.WARNING, logger=airflow_listener.__name__)
    for n in range(1, 5):
        airflow_listener.on_task_instance_running(previous_state=None, task_instance=FakeTI(try_number=n))
        time.sleep(0.02)
    assert reporter.dropped >= 2 and "queue full" in caplog.text
    started = time.monotonic()
    assert reporter.flush() is False  # the stopping process waits flush_timeout, not for the network
    assert time.monotonic() - started < 1
    airflow_listener.before_stopping(component=object())  # bounded too, and never raises
    release.set()
    assert reporter.flush(timeout=10)


def test_what_a_hook_cannot_read_is_logged_not_raised(use_reporter, make_app, caplog, service_key):
    use_reporter(StateReporter(client_into(make_app(), service_key)))
    airflow_listener.on_task_instance_running(previous_state=None, task_instance=object())  # no dag_id
    airflow_listener.on_dag_run_success(dag_run=object(), msg="success")  # not a mapped DagRun
    assert "could not report" in caplog.text


@ONE_PASS
def test_without_a_url_the_listener_stays_silent(monkeypatch):
    airflow_listener.reset()
    monkeypatch.delenv("AIRFLOW__TASKSTORE__URL", raising=False)
    try:
        assert airflow_listener.get_reporter() is None
        airflow_listener.on_task_instance_running(previous_state=None, task_instance=FakeTI())
        monkeypatch.setenv("AIRFLOW__TASKSTORE__URL", "http://taskstore:8080")
        monkeypatch.setenv("AIRFLOW__TASKSTORE__API_KEY", "k")
        monkeypatch.setenv("AIRFLOW__TASKSTORE__REPORT_STATES", "false")
        airflow_listener.reset()
        assert airflow_listener.get_reporter() is None
        monkeypatch.setenv("AIRFLOW__TASKSTORE__REPORT_STATES", "true")
        monkeypatch.setenv("AIRFLOW__TASKSTORE__REPORT_RETRIES", "2")
        airflow_listener.reset()
        reporter = airflow_listener.get_reporter()
        assert reporter is not None and reporter.client.settings.retries == 2
    finally:
        airflow_listener.reset()


@ONE_PASS
def test_state_report_describes_itself():
    report = StateReport(TaskIdentity("d", "r", "t", 2), None, None)
    assert airflow_listener._describe(report) == "state report none (try None) of d/r/t[2]"


def test_the_listener_reports_every_state_the_service_knows():
    """The listener may not import the service; its list of states must still be the service's
    (Airflow's human-in-the-loop awaiting_input was once missing, so those tasks went unreported)."""
    from webapp import runs
    from webapp.integrations.airflow_listener import KNOWN_STATES

    assert KNOWN_STATES == {state for state in runs.TI_STATES if state is not None}
