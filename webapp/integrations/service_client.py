"""The HTTP layer the Airflow backend, the in-task accessor and the listener share: the
service API under ``/api/v2/service`` (keys addressed by identity, state reports), with an
API key of role ``service``, sync and async, retries with backoff, typed errors.

Settings come from, first found: explicit arguments; Airflow's configuration when Airflow is
importable (section ``[taskstore]``, which also reads ``AIRFLOW__TASKSTORE__*`` variables);
otherwise the ``AIRFLOW__TASKSTORE__*`` environment variables themselves::

    [taskstore]
    url = http://taskstore:8080
    api_key = <a key made with: taskstore api-keys create airflow --role service>
    timeout = 10           # seconds per request
    retries = 5            # attempts per call (connection errors, timeouts and 5xx are retried)
    retry_wait = 0.2       # first backoff in seconds, doubling, with full jitter ...
    retry_wait_max = 5     # ... up to this

Imports httpx, tenacity and ``webapp.client`` (its errors and response checks) only: no Flask,
no SQLAlchemy, no other part of the service, and Airflow only when settings are read from it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import quote

import httpx
from tenacity import AsyncRetrying, RetryError, Retrying

from webapp.client import (
    _TRANSPORT_ERRORS,
    NotFoundError,
    TaskStoreError,
    _checked,
    _retry_policy,
    _Transient,
    _unavailable,
)

__all__ = [
    "AssetIdentity",
    "ServiceClient",
    "ServiceSettings",
    "TaskIdentity",
    "TaskStoreConfigurationError",
    "airflow_conf",
    "load_settings",
    "read_option",
]

SECTION = "taskstore"
SERVICE_PATH = "/api/v2/service/"

Expiry = datetime | None | Literal["default"]
"""What a task key's write says about its expiry: an aware time, None (never), or "default"
(the service's configured retention, decided by the server)."""


# --- settings -------------------------------------------------------------------------------


class TaskStoreConfigurationError(TaskStoreError, ValueError):
    """A setting is missing or wrong; the message names it as Airflow spells it
    (``[taskstore] url``) and as an environment variable (``AIRFLOW__TASKSTORE__URL``)."""


def setting_name(option: str) -> str:
    """``[taskstore] url`` / ``AIRFLOW__TASKSTORE__URL``: how an error names a setting."""
    return f"[{SECTION}] {option} / AIRFLOW__{SECTION.upper()}__{option.upper()}"


class _NoAirflow:
    """Marker: read the environment, not Airflow's configuration."""


NO_AIRFLOW = _NoAirflow()


def airflow_conf() -> Any | None:
    """Airflow's configuration when Airflow is importable (the Task SDK's on Airflow 3 workers,
    core's otherwise), else None. Importing it is the only way this module touches Airflow."""
    for module in ("airflow.sdk.configuration", "airflow.configuration"):
        try:
            return importlib.import_module(module).conf
        except ImportError:
            continue
    return None


def read_option(option: str, conf: Any = None) -> str | None:
    """A ``[taskstore]`` option from Airflow's configuration (which also reads
    ``AIRFLOW__TASKSTORE__<OPTION>``), or from that environment variable without Airflow.
    ``conf``: Airflow's configuration object, ``NO_AIRFLOW``, or None to find out."""
    if conf is None:
        conf = airflow_conf()
    if conf is None or conf is NO_AIRFLOW:
        value = os.environ.get(f"AIRFLOW__{SECTION.upper()}__{option.upper()}")
    else:
        value = conf.get(SECTION, option, fallback=None)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


@dataclass(frozen=True)
class ServiceSettings:
    url: str
    api_key: str = ""
    timeout: float = 10.0
    retries: int = 5
    retry_wait: float = 0.2
    retry_wait_max: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.strip():
            raise TaskStoreConfigurationError(
                f"Task Store's URL is not set: set {setting_name('url')} "
                f"(e.g. [{SECTION}] url = http://taskstore:8080 in airflow.cfg, or "
                f"AIRFLOW__{SECTION.upper()}__URL=http://taskstore:8080 in the environment)"
            )
        url = self.url.strip()
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1].strip("/")) == 0:
            raise TaskStoreConfigurationError(
                f"{setting_name('url')} must be the service's http:// or https:// address "
                f"(e.g. http://taskstore:8080), not {self.url!r}"
            )
        object.__setattr__(self, "url", url.rstrip("/"))
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise TaskStoreConfigurationError(
                f"Task Store's API key is not set: set {setting_name('api_key')} to a key of role service "
                "(make one with: taskstore api-keys create airflow --role service)"
            )
        object.__setattr__(self, "api_key", self.api_key.strip())
        _check_number("timeout", self.timeout, minimum=0, exclusive=True)
        _check_number("retries", self.retries, minimum=1, integer=True)
        _check_number("retry_wait", self.retry_wait, minimum=0)
        _check_number("retry_wait_max", self.retry_wait_max, minimum=0)


def _check_number(option: str, value: Any, *, minimum: float, exclusive: bool = False, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    in_range = isinstance(value, kind) and (value > minimum if exclusive else value >= minimum)
    if isinstance(value, bool) or not in_range:
        what = "an integer" if integer else "a number"
        bound = f"> {minimum}" if exclusive else f">= {minimum}"
        raise TaskStoreConfigurationError(f"{setting_name(option)} must be {what} {bound}, not {value!r}")


_DEFAULTS = {"timeout": 10.0, "retries": 5, "retry_wait": 0.2, "retry_wait_max": 5.0}


def load_settings(url: str | None = None, api_key: str | None = None, *, conf: Any = None,
                  **options: float | int | None) -> ServiceSettings:
    """Settings from explicit arguments, then Airflow's ``[taskstore]`` section (or the
    ``AIRFLOW__TASKSTORE__*`` variables without Airflow), then the defaults.
    ``options``: ``timeout``, ``retries``, ``retry_wait``, ``retry_wait_max``."""
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if conf is None and (url is None or api_key is None or any(options.get(name) is None for name in _DEFAULTS)):
        conf = airflow_conf() or NO_AIRFLOW
    values: dict[str, Any] = {
        "url": url if url is not None else read_option("url", conf),
        "api_key": api_key if api_key is not None else read_option("api_key", conf),
    }
    for name, default in _DEFAULTS.items():
        given = options.get(name)
        if given is None:
            raw = read_option(name, conf)
            given = default if raw is None else _parse_number(name, raw, integer=isinstance(default, int))
        values[name] = given
    return ServiceSettings(**values)


def _parse_number(option: str, raw: str, *, integer: bool) -> float | int:
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        what = "an integer" if integer else "a number"
        raise TaskStoreConfigurationError(f"{setting_name(option)} must be {what}, not {raw!r}") from None


# --- addresses ------------------------------------------------------------------------------


class TaskIdentity(NamedTuple):
    """A task instance as Airflow names it; its retries share it (and its keys)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


class AssetIdentity(NamedTuple):
    """An asset by name and/or URI (the service looks it up by name when given, else by URI;
    a write registers it with both when it is missing)."""

    name: str | None = None
    uri: str | None = None

    def params(self) -> dict[str, str]:
        if not self.name and not self.uri:
            raise ValueError("an asset needs a name or a uri")
        return {label: value for label, value in (("name", self.name), ("uri", self.uri)) if value}


def _segment(text: str) -> str:
    """One path segment whatever the text holds ("/" included); dots of "." and ".." encoded
    too, or URL normalization would remove the segment."""
    segment = quote(str(text), safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def _expiry_json(expires_at: Expiry) -> str | None:
    if expires_at is None or expires_at == "default":
        return expires_at
    if not isinstance(expires_at, datetime):
        raise TypeError(f"expires_at must be an aware datetime, None or 'default', not {type(expires_at).__name__}")
    if expires_at.tzinfo is None:  # Airflow's interface speaks of UTC datetimes
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at.isoformat()


# --- the client -----------------------------------------------------------------------------

_RAISE = object()


@dataclass(frozen=True)
class _Call:
    """One request, the same for the sync and the async path."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    result: Callable[[httpx.Response], Any] = lambda _response: None
    if_missing: Any = _RAISE  # what a 404 means (None for a read); _RAISE: NotFoundError


def _text(response: httpx.Response) -> str:
    return response.content.decode("utf-8")  # JSON text is UTF-8; never guess an encoding


def _deleted(response: httpx.Response) -> int:
    return int(response.json()["deleted"])


class ServiceClient:
    """The service API for one service key: task keys by (dag_id, run_id, task_id, map_index),
    asset keys by name or URI, and state reports. Values are JSON *text*, sent and returned
    byte for byte. Thread-safe (one ``httpx.Client``); the ``a*`` methods use an
    ``httpx.AsyncClient`` per event loop, made on first use."""

    def __init__(self, settings: ServiceSettings, *, transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self._policy = _retry_policy(settings.retries, settings.retry_wait, settings.retry_wait_max)
        self._base_url = settings.url + SERVICE_PATH
        self._headers = {"Authorization": f"Bearer {settings.api_key}", "Accept": "application/json"}
        self._http = httpx.Client(base_url=self._base_url, timeout=settings.timeout, headers=self._headers,
                                  transport=transport)
        self._async_transport = async_transport
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ServiceClient {self.settings.url}>"

    # --- task keys --------------------------------------------------------------------------

    def get_task_key(self, task: TaskIdentity, key: str) -> str | None:
        """The stored JSON text, or None when the key (or the task instance) is not there."""
        return self._run(self._get_task_key(task, key))

    def put_task_key(self, task: TaskIdentity, key: str, value_json: str, expires_at: Expiry = "default") -> None:
        self._run(self._put_task_key(task, key, value_json, expires_at))

    def delete_task_key(self, task: TaskIdentity, key: str) -> None:
        self._run(self._delete_task_key(task, key))

    def clear_task_keys(self, task: TaskIdentity, *, all_map_indices: bool = False) -> int:
        """Delete the task instance's keys (every map index's with ``all_map_indices``); how many."""
        return self._run(self._clear_task_keys(task, all_map_indices))

    def report_state(self, task: TaskIdentity, state: str | None, try_number: int | None = None) -> dict[str, Any]:
        """A task instance's state (and try) as Airflow saw it; the run and task instance are
        created on the first report. Answers the task instance as the service has it."""
        return self._run(self._report_state(task, state, try_number))

    async def aget_task_key(self, task: TaskIdentity, key: str) -> str | None:
        return await self._arun(self._get_task_key(task, key))

    async def aput_task_key(self, task: TaskIdentity, key: str, value_json: str,
                            expires_at: Expiry = "default") -> None:
        await self._arun(self._put_task_key(task, key, value_json, expires_at))

    async def adelete_task_key(self, task: TaskIdentity, key: str) -> None:
        await self._arun(self._delete_task_key(task, key))

    async def aclear_task_keys(self, task: TaskIdentity, *, all_map_indices: bool = False) -> int:
        return await self._arun(self._clear_task_keys(task, all_map_indices))

    async def areport_state(self, task: TaskIdentity, state: str | None,
                            try_number: int | None = None) -> dict[str, Any]:
        return await self._arun(self._report_state(task, state, try_number))

    # --- asset keys -------------------------------------------------------------------------

    def get_asset_key(self, asset: AssetIdentity, key: str) -> str | None:
        """The stored JSON text, or None when the key (or the asset) is not there."""
        return self._run(self._get_asset_key(asset, key))

    def put_asset_key(self, asset: AssetIdentity, key: str, value_json: str) -> None:
        self._run(self._put_asset_key(asset, key, value_json))

    def delete_asset_key(self, asset: AssetIdentity, key: str) -> None:
        self._run(self._delete_asset_key(asset, key))

    def clear_asset_keys(self, asset: AssetIdentity) -> int:
        return self._run(self._clear_asset_keys(asset))

    async def aget_asset_key(self, asset: AssetIdentity, key: str) -> str | None:
        return await self._arun(self._get_asset_key(asset, key))

    async def aput_asset_key(self, asset: AssetIdentity, key: str, value_json: str) -> None:
        await self._arun(self._put_asset_key(asset, key, value_json))

    async def adelete_asset_key(self, asset: AssetIdentity, key: str) -> None:
        await self._arun(self._delete_asset_key(asset, key))

    async def aclear_asset_keys(self, asset: AssetIdentity) -> int:
        return await self._arun(self._clear_asset_keys(asset))

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        """Close this event loop's async connection, and the synchronous one."""
        with self._lock:
            http = self._async_clients.pop(asyncio.get_running_loop(), None)
        if http is not None:
            await http.aclose()
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    # --- the calls --------------------------------------------------------------------------

    @staticmethod
    def _task_path(task: TaskIdentity, rest: str) -> str:
        return f"tasks/{_segment(task.dag_id)}/{_segment(task.run_id)}/{_segment(task.task_id)}/{rest}"

    @staticmethod
    def _map_index(task: TaskIdentity) -> dict[str, Any]:
        return {"map_index": int(task.map_index if task.map_index is not None else -1)}

    def _get_task_key(self, task: TaskIdentity, key: str) -> _Call:
        return _Call("GET", self._task_path(task, f"keys/{_segment(key)}"), self._map_index(task),
                     result=_text, if_missing=None)

    def _put_task_key(self, task: TaskIdentity, key: str, value_json: str, expires_at: Expiry) -> _Call:
        if not isinstance(value_json, str):
            raise TypeError(f"value_json must be JSON text (str), not {type(value_json).__name__}")
        body = {"value_json": value_json, "expires_at": _expiry_json(expires_at)}
        return _Call("PUT", self._task_path(task, f"keys/{_segment(key)}"), self._map_index(task), body)

    def _delete_task_key(self, task: TaskIdentity, key: str) -> _Call:
        return _Call("DELETE", self._task_path(task, f"keys/{_segment(key)}"), self._map_index(task),
                     if_missing=None)

    def _clear_task_keys(self, task: TaskIdentity, all_map_indices: bool) -> _Call:
        params = self._map_index(task)
        if all_map_indices:
            params["all_map_indices"] = "true"
        return _Call("DELETE", self._task_path(task, "keys"), params, result=_deleted, if_missing=0)

    def _report_state(self, task: TaskIdentity, state: str | None, try_number: int | None) -> _Call:
        body = {"state": state, "try_number": try_number}
        return _Call("PUT", self._task_path(task, "state"), self._map_index(task), body,
                     result=lambda response: response.json())

    def _get_asset_key(self, asset: AssetIdentity, key: str) -> _Call:
        return _Call("GET", "assets/value", {**asset.params(), "key": key}, result=_text, if_missing=None)

    def _put_asset_key(self, asset: AssetIdentity, key: str, value_json: str) -> _Call:
        if not isinstance(value_json, str):
            raise TypeError(f"value_json must be JSON text (str), not {type(value_json).__name__}")
        return _Call("PUT", "assets/value", {**asset.params(), "key": key}, {"value_json": value_json})

    def _delete_asset_key(self, asset: AssetIdentity, key: str) -> _Call:
        return _Call("DELETE", "assets/value", {**asset.params(), "key": key}, if_missing=None)

    def _clear_asset_keys(self, asset: AssetIdentity) -> _Call:
        return _Call("DELETE", "assets/clear", asset.params(), result=_deleted, if_missing=0)

    # --- sending ----------------------------------------------------------------------------

    @staticmethod
    def _request_args(call: _Call) -> dict[str, Any]:
        args: dict[str, Any] = {"params": call.params}
        if call.body is not None:
            args["content"] = json.dumps(call.body).encode("utf-8")
            args["headers"] = {"Content-Type": "application/json"}
        return args

    def _run(self, call: _Call) -> Any:
        try:
            response = Retrying(**self._policy)(self._attempt, call)
        except RetryError as exc:
            raise _unavailable(exc, call.method, self._base_url + call.path) from exc.last_attempt.exception()
        except NotFoundError:
            if call.if_missing is _RAISE:
                raise
            return call.if_missing
        return call.result(response)

    def _attempt(self, call: _Call) -> httpx.Response:
        try:
            response = self._http.request(call.method, call.path, **self._request_args(call))
        except _TRANSPORT_ERRORS as exc:
            raise _Transient(None, f"{type(exc).__name__}: {exc}") from exc
        return _checked(call.method, response)

    async def _arun(self, call: _Call) -> Any:
        try:
            response = await AsyncRetrying(**self._policy)(self._aattempt, call)
        except RetryError as exc:
            raise _unavailable(exc, call.method, self._base_url + call.path) from exc.last_attempt.exception()
        except NotFoundError:
            if call.if_missing is _RAISE:
                raise
            return call.if_missing
        return call.result(response)

    async def _aattempt(self, call: _Call) -> httpx.Response:
        try:
            response = await self._async_client().request(call.method, call.path, **self._request_args(call))
        except _TRANSPORT_ERRORS as exc:
            raise _Transient(None, f"{type(exc).__name__}: {exc}") from exc
        return _checked(call.method, response)

    def _async_client(self) -> httpx.AsyncClient:
        """This event loop's async connection (an ``httpx.AsyncClient`` belongs to one loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            http = self._async_clients.get(loop)
            if http is None:
                http = httpx.AsyncClient(base_url=self._base_url, timeout=self.settings.timeout,
                                         headers=self._headers, transport=self._async_transport)
                self._async_clients[loop] = http
            return http
