"""The JSON shapes of the admin API, as pydantic models: one model per body, which validates
what comes in (``core.parse_body``), serialises what goes out (``core.out``) and documents
both in the OpenAPI document. The worker API's shapes are described here too, for the
document only: that path is hand-tuned (``webapp.store.rules``).

The store's own rules (key, value, expiry, names) stay in ``webapp.store`` and ``runs``;
these models give the shapes and types, and errors name the field either way."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    StrictBool,
    StrictInt,
    StrictStr,
)

from .. import store
from ..auth.roles import KEY_ROLES, ROLES
from ..errors import InvalidInput
from ..http import INT_MAX
from ..models import ID_LENGTH
from ..runs import DagRunState, TaskInstanceState

Role = Literal[ROLES]  # type: ignore[valid-type]
KeyRole = Literal[KEY_ROLES]  # type: ignore[valid-type]
MORE_THAN_CAP = f"{store.COUNT_CAP + 1} means more than {store.COUNT_CAP:,}"

# The examples of the OpenAPI document tell one story (a run of etl_daily, its load_orders task
# writing a checkpoint, an orders asset), so a request's names come back in its answer. The
# document's path and query examples use the same values.
EXAMPLE = {
    "dag_id": "etl_daily", "run_id": "scheduled__2026-12-01T00:00:00+00:00", "task_id": "load_orders",
    "ti_id": "0193a9f2-6c1e-7b4d-9f3a-2d8e5c4b1a07", "key": "checkpoint", "username": "ada",
    "api_key": "ci-deploy", "asset": "warehouse.orders", "uri": "s3://warehouse/orders", "watcher": "orders-sensor",
}
EXAMPLE_VALUE = {"last_file": "part-00041.parquet", "rows_loaded": 1204}  # keys sorted, as the document shows them


class Strict(BaseModel):
    """A request body: unknown fields are refused, numbers are not read from strings."""

    model_config = ConfigDict(extra="forbid")


def _store_rule(rule):
    """A store rule as a pydantic validator: its InvalidInput becomes pydantic's error, which
    ``core.parse_body`` reports with the field's full path."""
    def validate(raw: Any) -> Any:
        try:
            return rule(raw)
        except InvalidInput as exc:
            raise ValueError(exc.problem) from None
    return BeforeValidator(validate)


def _any_timestamp(raw: Any) -> datetime | None:
    """ISO 8601 text or null (the store's rule: naive means UTC)."""
    return store.parse_timestamp(raw, "value")


def _aware_expiry(raw: Any) -> Any:
    """``"default"``, null, or a timestamp with its time zone: a person's expiry must say it."""
    if raw == "default" or raw is None:
        return raw
    if isinstance(raw, str):
        try:
            naive = datetime.fromisoformat(raw).tzinfo is None
        except ValueError:
            naive = False  # not a timestamp at all: the store's rule says so
        if naive:
            raise InvalidInput("expires_at", "must include a UTC offset, e.g. 2026-12-01T00:00:00Z")
    return store.parse_timestamp(raw)


Name = Annotated[StrictStr, Field(min_length=1, max_length=ID_LENGTH)]
MapIndex = Annotated[StrictInt, Field(ge=0, le=INT_MAX)]


class ErrorDetail(BaseModel):
    reason: str = Field(description="Machine-readable: not_found, validation_error, unauthenticated, ...",
                        examples=["validation_error"])
    message: str = Field(description="What went wrong, naming the field or key", examples=["must be a JSON object"])
    field: str | None = Field(None, description="The input to blame, for 422", examples=["body"])


class ErrorBody(BaseModel):
    detail: ErrorDetail


# --- worker API (documentation only) ----------------------------------------------------------


class WorkerPutBody(Strict):
    value: JsonValue = Field(description="Any JSON value but null; NaN and Infinity are refused",
                             examples=[EXAMPLE_VALUE])
    expires_at: datetime | None = Field(None, description="ISO 8601; naive means UTC; null never expires",
                                        examples=["2026-12-08T06:00:00Z"])


class ValueBody(BaseModel):
    value: JsonValue = Field(examples=[EXAMPLE_VALUE])


class AssetValueBody(Strict):
    value: JsonValue = Field(description="Any JSON value but null; NaN and Infinity are refused",
                             examples=[{"watermark": "2026-12-01T06:00:00Z"}])


# --- runs and task instances ------------------------------------------------------------------


class TaskSpec(Strict):
    task_id: Name = Field(examples=[EXAMPLE["task_id"]])
    map_indexes: list[MapIndex] | None = Field(None, description="Omit for an unmapped task (map_index -1)")
    map_keys: list[StrictStr] | None = Field(
        None, description="One per map index: a fingerprint of that index's input; keys follow it (see expand)")
    inlets: list[StrictStr] = Field([], description="Names of the assets the task reads (asset_access = declared)")
    outlets: list[StrictStr] = Field([], description="Names of the assets the task writes",
                                     examples=[[EXAMPLE["asset"]]])


class DagRunCreate(Strict):
    dag_run_id: Name = Field(examples=[EXAMPLE["run_id"]])
    logical_date: Annotated[datetime | None, _store_rule(_any_timestamp)] = Field(None, examples=["2026-12-01T00:00:00Z"])
    tasks: list[TaskSpec] = Field([], examples=[[{"task_id": EXAMPLE["task_id"], "outlets": [EXAMPLE["asset"]]}]])


class TaskInstanceOut(BaseModel):
    id: str = Field(description="UUID that workers address and tokens name", examples=[EXAMPLE["ti_id"]])
    dag_id: str = Field(examples=[EXAMPLE["dag_id"]])
    dag_run_id: str = Field(examples=[EXAMPLE["run_id"]])
    task_id: str = Field(examples=[EXAMPLE["task_id"]])
    map_index: int = Field(examples=[-1])
    state: TaskInstanceState | None = Field(examples=["running"])
    try_number: int
    start_date: datetime | None
    end_date: datetime | None = Field(examples=[None])


class DagRunOut(BaseModel):
    dag_id: str = Field(examples=[EXAMPLE["dag_id"]])
    dag_run_id: str = Field(examples=[EXAMPLE["run_id"]])
    state: DagRunState = Field(examples=["running"])
    logical_date: datetime | None = Field(examples=["2026-12-01T00:00:00Z"])
    start_date: datetime | None
    end_date: datetime | None = Field(examples=[None])


class DagRunCreated(DagRunOut):
    task_instances: list[TaskInstanceOut]


class DagOut(BaseModel):
    dag_id: str = Field(examples=[EXAMPLE["dag_id"]])
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
    state: TaskInstanceState | Literal["none"] | None = Field(
        description='A task instance state; null or "none" for none', examples=["up_for_retry"])


class TokenOut(BaseModel):
    token: str = Field(examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzYTlmMi…"])
    expires_at: datetime = Field(examples=["2026-12-01T07:00:00Z"])


# --- stored keys ------------------------------------------------------------------------------


class Entry(BaseModel):
    key: str = Field(examples=[EXAMPLE["key"]])
    value: JsonValue = Field(examples=[EXAMPLE_VALUE])
    updated_at: datetime
    expires_at: datetime | None = Field(examples=["2026-12-31T06:00:00Z"])
    version: int = Field(description="Bumped on every write; the ETag carries it", examples=[3])
    written_by_try: int | None = Field(None, description="The try that last wrote it; null: a person or tool")


class EntryList(BaseModel):
    task_state_store: list[Entry]
    total_entries: int


class AdminPutBody(Strict):
    value: JsonValue = Field(description="Any JSON value but null", examples=[EXAMPLE_VALUE])
    expires_at: Annotated[Literal["default"] | datetime | None, _store_rule(_aware_expiry)] = Field(
        "default", description='"default" = configured retention, null = never, or an aware timestamp'
    )


class AdminPatchBody(Strict):
    value: JsonValue = Field(description="Any JSON value but null", examples=[EXAMPLE_VALUE])


class ClearResult(BaseModel):
    deleted: int


class Health(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(description='Each check and its outcome: {"database": "ok"}',
                                   examples=[{"database": "ok"}])


# --- people, API keys and the audit log ---------------------------------------------------------


class Limited(BaseModel):
    dags: str | None = Field(description="The DAG id patterns this one may see (null: every DAG)")
    assets: str | None = Field(description="The asset name patterns this one may see (null: every asset)")


class UserOut(Limited):
    username: str = Field(examples=[EXAMPLE["username"]])
    role: Role = Field(examples=["editor"])
    created_at: datetime
    disabled_at: datetime | None = Field(description="Set while the user may not log in", examples=[None])


class UserList(BaseModel):
    users: list[UserOut]
    total_entries: int


class LimitsIn(Strict):
    """What a person or API key may see; on a change, a field given replaces its patterns."""

    dags: StrictStr | None = Field(None, description="DAG ids this one may see: patterns with * and ?, "
                                   "comma-separated (etl_*,ml_*); empty or * for every DAG", examples=["etl_*"])
    assets: StrictStr | None = Field(None, description="Asset names this one may see, as dags")


class UserCreate(LimitsIn):
    username: StrictStr = Field(examples=[EXAMPLE["username"]])
    password: StrictStr = Field(description="At least 8 characters", examples=["correct horse battery"])
    role: Role = Field("viewer", examples=["editor"])


class UserPatch(LimitsIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role | None = Field(None, description="A new role; the user's sessions end")
    disabled: bool | None = Field(None, description="true: may not log in, sessions end; false: may again")
    password: StrictStr | None = Field(None, description="A new password; the user's sessions end")


class SessionsEnded(BaseModel):
    ended: int = Field(description="Sessions that were live and are now ended")


class ApiKeyOut(Limited):
    id: int
    name: str = Field(examples=[EXAMPLE["api_key"]])
    prefix: str = Field(description="The key's first characters, which tell keys apart", examples=["tsk_Xq3v9A"])
    role: KeyRole = Field(examples=["editor"])
    created_at: datetime
    last_used_at: datetime | None = Field(description="Within a minute")
    revoked_at: datetime | None = Field(examples=[None])


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]
    total_entries: int


class ApiKeyCreate(LimitsIn):
    name: StrictStr = Field(examples=[EXAMPLE["api_key"]])
    role: KeyRole = Field("admin", examples=["editor"])


class ApiKeyPatch(LimitsIn):
    pass


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown once, store it now",
                     examples=["tsk_Xq3v9A7mKp2LwR8sT1uY4zB6nC0dE5fG9hJ3kM7pQ2r"])


class AuditEventOut(BaseModel):
    at: datetime
    actor: str = Field(examples=[EXAMPLE["username"]])
    action: str = Field(examples=["api_key.create"])
    subject: str = Field(examples=[EXAMPLE["api_key"]])
    details: str | None = Field(examples=["role editor, dags etl_*, assets *, tsk_Xq3v9A…"])


class AuditLog(BaseModel):
    events: list[AuditEventOut]
    total_entries: int


# --- assets -------------------------------------------------------------------------------------


class LastUpdatedBy(BaseModel):
    """Who last wrote the key: Airflow's fields (kind and the task instance's ids), plus name and hidden."""

    # The example: a task the caller may see. ``hidden`` is left out unless true, and so is it here.
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "task", "dag_id": EXAMPLE["dag_id"], "run_id": EXAMPLE["run_id"], "task_id": EXAMPLE["task_id"],
        "map_index": -1, "name": None}]})

    kind: Literal["task", "watcher", "api"]
    dag_id: str | None = Field(None, description="kind task: the writing task instance's", examples=[EXAMPLE["dag_id"]])
    run_id: str | None = Field(None, examples=[EXAMPLE["run_id"]])
    task_id: str | None = Field(None, examples=[EXAMPLE["task_id"]])
    map_index: int | None = Field(None, examples=[-1])
    name: str | None = Field(None, description="kind watcher: the watcher; kind api: the API key or person")
    hidden: bool = Field(False, exclude_if=lambda hidden: not hidden,
                         description="Sent (true) only for kind task when the task belongs to a DAG the caller "
                                     "may not see: dag_id, run_id, task_id and map_index are then null")


class AssetCreate(Strict):
    name: StrictStr = Field(description="Unique; any text up to 1,500 characters", examples=[EXAMPLE["asset"]])
    uri: StrictStr = Field(description="Unique; any text up to 1,500 characters", examples=[EXAMPLE["uri"]])
    group: StrictStr = Field("", examples=["warehouse"])


class AssetOut(BaseModel):
    id: int
    name: str = Field(examples=[EXAMPLE["asset"]])
    uri: str = Field(examples=[EXAMPLE["uri"]])
    group: str = Field(examples=["warehouse"])
    created_at: datetime


class AssetListed(AssetOut):
    key_count: int
    last_updated_at: datetime | None = Field(description="The asset's latest key write")
    last_updated_by: LastUpdatedBy | None


class AssetList(BaseModel):
    assets: list[AssetListed]
    total_entries: int


class WatcherTokenCreate(Strict):
    watcher: StrictStr = Field(description="The watcher's name: its writes are recorded as this watcher's",
                               examples=[EXAMPLE["watcher"]])


class AssetEntry(BaseModel):
    key: str = Field(examples=[EXAMPLE["key"]])
    value: JsonValue = Field(examples=[{"watermark": "2026-12-01T06:00:00Z"}])
    updated_at: datetime
    last_updated_by: LastUpdatedBy | None
    version: int = Field(description="Bumped on every write; the ETag carries it")


class AssetEntryList(BaseModel):
    asset_state_store: list[AssetEntry]
    total_entries: int


# --- tries, clear, mapped identity -----------------------------------------------------------


class TryOut(BaseModel):
    try_number: int
    id: str = Field(description="The task instance's id during that try (its token's subject)",
                    examples=[EXAMPLE["ti_id"]])
    state: TaskInstanceState | None
    start_date: datetime | None
    end_date: datetime | None


class TryList(BaseModel):
    tries: list[TryOut]
    total_entries: int


class ClearBody(Strict):
    dag_run_id: Name = Field(examples=[EXAMPLE["run_id"]])
    task_ids: list[Name] | None = Field(None, description="Only these tasks (default: every task of the run)",
                                        examples=[[EXAMPLE["task_id"]]])
    map_indexes: list[Annotated[StrictInt, Field(ge=-1, le=INT_MAX)]] | None = Field(
        None, description="Only these map indexes")
    keep_task_state: StrictBool = Field(False, description="Keep the keys (clearing discards them by default)")


class Cleared(BaseModel):
    task_instances: list[TaskInstanceOut] = Field(description="Reset to state none, each with its new id")
    keys_discarded: int


class ExpandBody(Strict):
    map_indexes: list[MapIndex] = Field(examples=[[0, 1]])
    map_keys: list[StrictStr] | None = Field(None, description="One per map index: a fingerprint of its input",
                                             examples=[["orders-2026-11-30", "orders-2026-12-01"]])


class Expanded(BaseModel):
    task_instances: list[TaskInstanceOut]
    keys_moved: int = Field(description="Keys that followed their item to its new map index")
    keys_set_aside: int = Field(description="Keys at an index whose item changed, kept but not handed out")


class SetAsideEntry(Entry):
    map_key: str | None = Field(description="The map key the key was written under", examples=["orders-2026-11-30"])


class SetAsideList(BaseModel):
    set_aside: list[SetAsideEntry]
    total_entries: int


class MoveBody(Strict):
    to_map_index: Annotated[StrictInt, Field(ge=-1, le=INT_MAX)] = Field(
        description="The map index whose task instance takes the key (its own map index: adopt it)")


# --- the service API ------------------------------------------------------------------------------


class StoredValue(RootModel[JsonValue]):
    """A service API read: the stored JSON text itself is the body, any JSON value."""

    root: JsonValue = Field(examples=[{"rows_loaded": 1204}])


class ServicePutBody(Strict):
    value_json: StrictStr = Field(description="The value as JSON text, stored and returned byte for byte",
                                  examples=['{"rows_loaded": 1204}'])
    expires_at: Annotated[Literal["default"] | datetime | None, _store_rule(_aware_expiry)] = Field(
        "default", description='"default" = the configured retention, null = never, or an aware timestamp')


class ServiceAssetPutBody(Strict):
    value_json: StrictStr = Field(description="The value as JSON text, stored and returned byte for byte",
                                  examples=['{"watermark": "2026-12-01T06:00:00Z"}'])


class ServiceStateBody(Strict):
    state: TaskInstanceState | Literal["none"] | None = Field(examples=["running"])
    try_number: Annotated[StrictInt, Field(ge=1, le=INT_MAX)] | None = Field(
        None, description="The scheduler's try number; tries not seen are counted in")
