"""The admin API under ``/api/v2``, shaped like Airflow's public REST API: DAG runs and task
instances for a scheduler, worker tokens, and listings. Callers present an admin API key."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, current_app, g, request

from .. import runs, store
from ..auth import api_keys, roles, tokens, users
from ..errors import InvalidInput, Unauthenticated
from ..extensions import csrf
from ..models import DagRun, TaskInstance
from ..transactions import committed
from . import schemas
from .openapi import documented
from .responses import no_content
from .http import bearer_token, int_arg, json_object

bp = Blueprint("admin", __name__, url_prefix="/api/v2")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@bp.before_request
def authenticate() -> None:
    """An API key in the Authorization header, or the session of a logged-in person. The
    session rides on a cookie the browser sends by itself, so its changes need the CSRF token."""
    if "Authorization" in request.headers:
        key = bearer_token()
        record = api_keys.authenticate(key)
        if record is None:
            hint = " (worker tokens are not accepted here)" if key.count(".") == 2 else ""
            raise Unauthenticated(f"Invalid API key{hint}")
        g.principal = roles.Principal(f"api-key:{record.name}", record.role)
        return
    user = users.logged_in()
    if user is None:
        raise Unauthenticated("Send an admin API key (Authorization: Bearer <key>) or log in")
    if request.method not in SAFE_METHODS:
        csrf.protect()
    g.principal = users.principal(user)


def require_role(role: str) -> None:
    g.principal.require(role)


def only_fields(body: dict, allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            raise InvalidInput(name, f"is not a field of this body (allowed: {', '.join(allowed)})")


def paging() -> tuple[int, int]:
    return int_arg("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE), int_arg("offset", 0, 0)


def iso(value) -> str | None:
    return None if value is None else value.isoformat()


def dag_run_json(run: DagRun) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id, "dag_run_id": run.run_id, "state": run.state,
        "logical_date": iso(run.logical_date), "start_date": iso(run.start_date), "end_date": iso(run.end_date),
    }


def task_instance_json(ti: TaskInstance) -> dict[str, Any]:
    return {
        "id": str(ti.id), "dag_id": ti.dag_id, "dag_run_id": ti.run_id, "task_id": ti.task_id,
        "map_index": ti.map_index, "state": ti.state, "try_number": ti.try_number,
        "start_date": iso(ti.start_date), "end_date": iso(ti.end_date),
    }


def task_specs(raw: Any) -> list[runs.TaskSpec]:
    if not isinstance(raw, list):
        raise InvalidInput("tasks", "must be a list of {\"task_id\": ..., \"map_indexes\": [...]}")
    specs = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput(f"tasks[{position}]", "must be an object")
        unexpected = set(item) - {"task_id", "map_indexes"}
        if unexpected:
            raise InvalidInput(f"tasks[{position}].{sorted(unexpected)[0]}", "is not a field of a task")
        indexes = item.get("map_indexes")
        if indexes is not None and (
            not isinstance(indexes, list) or not all(type(i) is int for i in indexes)
        ):
            raise InvalidInput(f"tasks[{position}].map_indexes", "must be a list of integers")
        specs.append(runs.TaskSpec(item.get("task_id"), indexes))
    return specs


# --- DAGs and runs --------------------------------------------------------------------------


@bp.get("/dags")
@documented("List DAGs with their numbers of runs and keys", tag="Runs", ok={200: schemas.DagList}, errors=(401, 422), query=("limit", "offset"))
def list_dags():
    page = runs.dag_summaries(*paging())
    return {"dags": [asdict(dag) for dag in page.items], "total_entries": page.total}


@bp.get("/dags/<dag_id>/dagRuns")
@documented("List the runs of a DAG, newest first", tag="Runs", ok={200: schemas.DagRunList}, errors=(401, 422), query=("state", "limit", "offset"))
def list_dag_runs(dag_id: str):
    limit, offset = paging()
    page = runs.list_dag_runs(dag_id, limit, offset, state=request.args.get("state"))
    return {"dag_runs": [dag_run_json(run) for run in page.items], "total_entries": page.total}


@bp.post("/dags/<dag_id>/dagRuns")
@documented("Create a DAG run with its task instances", tag="Runs", body=schemas.DagRunCreate, ok={201: schemas.DagRunCreated}, errors=(401, 403, 409, 413, 422))
def create_dag_run(dag_id: str):
    require_role("admin")
    body = json_object()
    only_fields(body, ("dag_run_id", "logical_date", "tasks"))
    specs = task_specs(body.get("tasks", []))
    logical_date = store.parse_timestamp(body.get("logical_date"), "logical_date")
    run, instances = committed(
        lambda: runs.create_dag_run(dag_id, body.get("dag_run_id"), specs, logical_date)
    )
    return {**dag_run_json(run), "task_instances": [task_instance_json(ti) for ti in instances]}, 201


@bp.get("/dags/<dag_id>/dagRuns/<run_id>")
@documented("One DAG run", tag="Runs", ok={200: schemas.DagRunOut}, errors=(401, 404))
def get_dag_run(dag_id: str, run_id: str):
    return dag_run_json(runs.get_dag_run(dag_id, run_id))


@bp.delete("/dags/<dag_id>/dagRuns/<run_id>")
@documented("Delete a run with its task instances and their keys", tag="Runs", errors=(401, 403, 404))
def delete_dag_run(dag_id: str, run_id: str):
    require_role("admin")
    committed(lambda: runs.delete_dag_run(dag_id, run_id))
    return no_content()


# --- task instances -------------------------------------------------------------------------


@bp.get("/dags/<dag_id>/dagRuns/<run_id>/taskInstances")
@documented("List the task instances of a run", tag="Runs", ok={200: schemas.TaskInstanceList}, errors=(401, 404, 422), query=("limit", "offset"))
def list_task_instances(dag_id: str, run_id: str):
    page = runs.list_task_instances(dag_id, run_id, *paging())
    listed = [{**task_instance_json(row.ti), "key_count": row.key_count} for row in page.items]
    return {"task_instances": listed, "total_entries": page.total}


@bp.get("/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>")
@documented("One task instance", tag="Runs", ok={200: schemas.TaskInstanceOut}, errors=(401, 404, 422), query=("map_index",))
def get_task_instance(dag_id: str, run_id: str, task_id: str):
    map_index = int_arg("map_index", -1, -1)
    return task_instance_json(runs.get_task_instance(dag_id, run_id, task_id, map_index))


@bp.patch("/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>")
@documented("Change a task instance's state (retries keep keys)", tag="Runs", body=schemas.StatePatch, ok={200: schemas.TaskInstanceOut}, errors=(401, 403, 404, 422), query=("map_index",))
def set_task_instance_state(dag_id: str, run_id: str, task_id: str):
    require_role("admin")
    map_index = int_arg("map_index", -1, -1)
    body = json_object()
    only_fields(body, ("state",))
    if "state" not in body:
        raise InvalidInput("state", "is required")
    state = runs.parse_state(body["state"])
    clear_on_success = current_app.config["TASKSTORE"].clear_on_success

    def change():
        ti = runs.get_task_instance(dag_id, run_id, task_id, map_index)
        return runs.set_state(ti, state, clear_on_success=clear_on_success)

    return task_instance_json(committed(change))


@bp.post("/taskInstances/<ti_id>/token")
@documented("Issue a worker token for a task instance", tag="Runs", ok={200: schemas.TokenOut}, errors=(401, 403, 404))
def issue_token(ti_id: str):
    require_role("admin")
    ti = runs.get_task_instance_by_id(store.parse_ti_id(ti_id))
    token, expires_at = tokens.issue(ti.id)
    return {"token": token, "expires_at": iso(expires_at)}
