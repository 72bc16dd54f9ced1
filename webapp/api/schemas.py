"""The JSON shapes of the API, as pydantic models, for the OpenAPI document.

Bodies are validated by ``webapp.store`` and the views (their messages name the field the
way the contract asks); these models describe the same shapes for people and tools, and
the schema-driven tests check that the two agree."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..store.counting import COUNT_CAP

MORE_THAN_CAP = f"{COUNT_CAP + 1} means more than {COUNT_CAP:,}"

TIState = Literal[
    "scheduled", "queued", "running", "success", "failed", "up_for_retry", "up_for_reschedule",
    "upstream_failed", "skipped", "removed", "deferred", "restarting", "none",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    reason: str = Field(description="Machine-readable: not_found, validation_error, unauthenticated, ...")
    message: str = Field(description="What went wrong, naming the field or key")
    field: str | None = Field(None, description="The input to blame, for 422")


class ErrorBody(BaseModel):
    detail: ErrorDetail


class WorkerPutBody(Strict):
    value: JsonValue = Field(description="Any JSON value but null; NaN and Infinity are refused")
    expires_at: datetime | None = Field(None, description="ISO 8601; naive means UTC; null never expires")


class ValueBody(BaseModel):
    value: JsonValue


class TaskSpec(Strict):
    task_id: str = Field(min_length=1, max_length=250)
    map_indexes: list[int] | None = Field(None, description="Omit for an unmapped task (map_index -1)")


class DagRunCreate(Strict):
    dag_run_id: str = Field(min_length=1, max_length=250)
    logical_date: datetime | None = None
    tasks: list[TaskSpec] = []


class TaskInstanceOut(BaseModel):
    id: str = Field(description="UUID that workers address and tokens name")
    dag_id: str
    dag_run_id: str
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start_date: datetime | None
    end_date: datetime | None


class DagRunOut(BaseModel):
    dag_id: str
    dag_run_id: str
    state: Literal["queued", "running", "success", "failed"]
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None


class DagRunCreated(DagRunOut):
    task_instances: list[TaskInstanceOut]


class DagOut(BaseModel):
    dag_id: str
    run_count: int
    task_instances_with_keys: int = Field(description=f"Task instances holding live keys; {MORE_THAN_CAP}")
    key_count: int = Field(description=f"Live keys; {MORE_THAN_CAP}")


class DagList(BaseModel):
    dags: list[DagOut]
    total_entries: int


class DagRunList(BaseModel):
    dag_runs: list[DagRunOut]
    total_entries: int


class TaskInstanceListed(TaskInstanceOut):
    key_count: int = Field(description="Live keys of this task instance")


class TaskInstanceList(BaseModel):
    task_instances: list[TaskInstanceListed]
    total_entries: int


class StatePatch(Strict):
    state: TIState | None


class TokenOut(BaseModel):
    token: str
    expires_at: datetime


class Entry(BaseModel):
    key: str
    value: JsonValue
    updated_at: datetime
    expires_at: datetime | None
    version: int = Field(description="Bumped on every write; the ETag carries it")


class EntryList(BaseModel):
    task_state_store: list[Entry]
    total_entries: int


class AdminPutBody(Strict):
    value: JsonValue
    expires_at: Literal["default"] | datetime | None = Field(
        "default", description='"default" = configured retention, null = never, or an aware timestamp'
    )


class AdminPatchBody(Strict):
    value: JsonValue


class ClearResult(BaseModel):
    deleted: int


class Health(BaseModel):
    status: Literal["ok"]
