"""Admin API routes for a scheduler, shaped like Airflow's public REST API: DAGs, DAG runs and
task instances, and worker tokens. Auth, paging and bodies: ``core``."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from .. import runs, store
from ..auth import tokens
from ..models import DagRun, TaskInstance
from ..transactions import committed
from . import schemas
from .core import bp, map_index_arg, out, paging, parse_body, require_role
from .openapi import documented
from .responses import no_content


def dag_run_fields(run: DagRun) -> dict[str, Any]:
    return {"dag_id": run.dag_id, "dag_run_id": run.run_id, "state": run.state, "logical_date": run.logical_date,
            "start_date": run.start_date, "end_date": run.end_date}


def task_instance_fields(ti: TaskInstance) -> dict[str, Any]:
    return {"id": str(ti.id), "dag_id": ti.dag_id, "dag_run_id": ti.run_id, "task_id": ti.task_id,
            "map_index": ti.map_index, "state": ti.state, "try_number": ti.try_number,
            "start_date": ti.start_date, "end_date": ti.end_date}


# --- DAGs and runs --------------------------------------------------------------------------


@bp.get("/dags")
@documented("List DAGs with their numbers of runs and keys", tag="Runs", ok={200: schemas.DagList}, errors=(401, 422), query=("limit", "offset"))
def list_dags():
    page = runs.dag_summaries(*paging(), visible=g.principal.dags)
    return out(schemas.DagList, dags=[vars(dag) for dag in page.items], total_entries=page.total)


@bp.get("/dags/<dag_id>/dagRuns")
@documented("List the runs of a DAG, newest first", tag="Runs", ok={200: schemas.DagRunList}, errors=(401, 422), query=("state", "limit", "offset"))
def list_dag_runs(dag_id: str):
    limit, offset = paging()
    page = runs.list_dag_runs(dag_id, limit, offset, state=request.args.get("state"))
    return out(schemas.DagRunList, dag_runs=[dag_run_fields(run) for run in page.items], total_entries=page.total)


@bp.post("/dags/<dag_id>/dagRuns")
@documented("Create a DAG run with its task instances", tag="Runs", body=schemas.DagRunCreate, ok={201: schemas.DagRunCreated}, errors=(401, 403, 409, 413, 422))
def create_dag_run(dag_id: str):
    require_role("admin")
    body = parse_body(schemas.DagRunCreate)
    specs = [runs.TaskSpec(task.task_id, task.map_indexes, tuple(task.inlets), tuple(task.outlets),
                           None if task.map_keys is None else tuple(task.map_keys))
             for task in body.tasks]
    run, instances = committed(lambda: runs.create_dag_run(dag_id, body.dag_run_id, specs, body.logical_date))
    return out(schemas.DagRunCreated, **dag_run_fields(run),
               task_instances=[task_instance_fields(ti) for ti in instances]), 201


@bp.get("/dags/<dag_id>/dagRuns/<run_id>")
@documented("One DAG run", tag="Runs", ok={200: schemas.DagRunOut}, errors=(401, 404))
def get_dag_run(dag_id: str, run_id: str):
    return out(schemas.DagRunOut, **dag_run_fields(runs.get_dag_run(dag_id, run_id)))


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
    listed = [{**task_instance_fields(row.ti), "key_count": row.key_count} for row in page.items]
    return out(schemas.TaskInstanceList, task_instances=listed, total_entries=page.total)


@bp.get("/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>")
@documented("One task instance", tag="Runs", ok={200: schemas.TaskInstanceOut}, errors=(401, 404, 422), query=("map_index",))
def get_task_instance(dag_id: str, run_id: str, task_id: str):
    ti = runs.get_task_instance(dag_id, run_id, task_id, map_index_arg())
    return out(schemas.TaskInstanceOut, **task_instance_fields(ti))


@bp.patch("/dags/<dag_id>/dagRuns/<run_id>/taskInstances/<task_id>")
@documented("Change a task instance's state (retries keep keys)", tag="Runs", body=schemas.StatePatch, ok={200: schemas.TaskInstanceOut}, errors=(401, 403, 404, 422), query=("map_index",))
def set_task_instance_state(dag_id: str, run_id: str, task_id: str):
    require_role("admin")
    map_index = map_index_arg()
    state = runs.parse_state(parse_body(schemas.StatePatch).state)
    clear_on_success = current_app.config["TASKSTORE"].clear_on_success

    def change():
        ti = runs.get_task_instance(dag_id, run_id, task_id, map_index)
        return runs.set_state(ti, state, clear_on_success=clear_on_success)

    return out(schemas.TaskInstanceOut, **task_instance_fields(committed(change)))


@bp.post("/taskInstances/<ti_id>/token")
@documented("Issue a worker token for a task instance", tag="Runs", ok={200: schemas.TokenOut}, errors=(401, 403, 404))
def issue_token(ti_id: str):
    require_role("admin")
    ti = runs.get_task_instance_by_id(store.parse_ti_id(ti_id))
    token, expires_at = tokens.issue(ti.id)
    return out(schemas.TokenOut, token=token, expires_at=expires_at)
