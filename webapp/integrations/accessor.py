"""Airflow 3.3's ``context["task_state_store"]``, for any Python worker: Airflow 2.x, 3.0-3.2
(which have no task state store), or no Airflow at all. It talks to Task Store's service API
with a service API key, addressing the task instance by (dag_id, run_id, task_id, map_index),
so every try of a task instance reads and writes the same keys::

    from datetime import timedelta
    from webapp.integrations.accessor import NEVER_EXPIRE, TaskStateStore

    @task(retries=3)
    def copy_partitions(**context):
        store = TaskStateStore.from_context(context)     # dag_id, run_id, task_id, map_index of context["ti"]
        done = store.get("done", default=0)
        for n in range(done, 100):
            copy(n)
            store.set("done", n + 1)                     # None: the service's default retention
        store.set("job_id", "application_42", retention=timedelta(days=2))
        store.set("schema", {"v": 3}, retention=NEVER_EXPIRE)

Settings (URL, API key, timeouts): explicit arguments; else Airflow's ``[taskstore] url`` and
``api_key`` when Airflow is importable; else the ``AIRFLOW__TASKSTORE__URL`` and
``AIRFLOW__TASKSTORE__API_KEY`` environment variables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from webapp.client import NEVER_EXPIRE, _NeverExpire
from webapp.integrations.service_client import (
    AssetIdentity,
    Expiry,
    ServiceClient,
    TaskIdentity,
    load_settings,
)

__all__ = ["NEVER_EXPIRE", "AssetStateStore", "TaskStateStore"]

Retention = timedelta | _NeverExpire | None


def _expiry(retention: Retention) -> Expiry:
    """What the service stores: ``"default"`` lets the server apply its configured retention;
    ``NEVER_EXPIRE`` (or Airflow's own ``NEVER_EXPIRE``, which is ``timedelta.max``) is None."""
    if retention is None:
        return "default"
    if retention is NEVER_EXPIRE or (isinstance(retention, timedelta) and retention == timedelta.max):
        return None
    if not isinstance(retention, timedelta):
        raise TypeError(f"retention must be a timedelta, NEVER_EXPIRE or None, not {type(retention).__name__}")
    if retention <= timedelta(0):
        raise ValueError("retention must be a positive timedelta (use delete() to remove a key)")
    try:
        return datetime.now(UTC) + retention
    except OverflowError:  # beyond year 9999: as good as never
        return None


def _encode(value: Any) -> str:
    if value is None:
        raise ValueError("Cannot set value as None; use delete() to remove a key")
    return json.dumps(value, allow_nan=False)  # Airflow's own encoding (json.dumps); NaN refused


def _decode(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


class _Connected:
    """Owns or borrows a ``ServiceClient``."""

    def __init__(self, client: ServiceClient | None, url: str | None, api_key: str | None, options: dict[str, Any]):
        self._owns_client = client is None
        self.client = client if client is not None else ServiceClient(load_settings(url, api_key, **options))

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    def __enter__(self):
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.aclose()


class TaskStateStore(_Connected):
    """The keys of one task instance, shared by its tries. ``get``, ``set``, ``delete`` and
    ``clear`` as Airflow 3.3's ``context["task_state_store"]``, and ``aget``, ``aset``,
    ``adelete``, ``aclear`` for async code.

    ``url``, ``api_key`` and the other settings (``timeout``, ``retries``, ``retry_wait``,
    ``retry_wait_max``) default to Airflow's ``[taskstore]`` configuration, or the
    ``AIRFLOW__TASKSTORE__*`` environment variables without Airflow; ``client`` shares one
    ``ServiceClient`` between accessors.
    """

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = -1, *,
                 url: str | None = None, api_key: str | None = None, client: ServiceClient | None = None,
                 **options: Any):
        for name, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        self.identity = TaskIdentity(dag_id, run_id, task_id, -1 if map_index is None else int(map_index))
        super().__init__(client, url, api_key, options)

    @classmethod
    def from_context(cls, context: Mapping[str, Any], **kwargs: Any) -> TaskStateStore:
        """The running task instance's store, from an Airflow task context (2.x or 3.x):
        dag_id, run_id, task_id and map_index of ``context["ti"]``."""
        ti = context.get("ti")
        if ti is None:
            ti = context.get("task_instance")
        if ti is None:
            raise ValueError("the context has no 'ti': pass an Airflow task context, or build "
                             "TaskStateStore(dag_id, run_id, task_id, map_index) directly")
        map_index = getattr(ti, "map_index", -1)
        return cls(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else map_index, **kwargs)

    def __repr__(self) -> str:
        dag_id, run_id, task_id, map_index = self.identity
        return f"<TaskStateStore {dag_id}/{run_id}/{task_id}[{map_index}]>"

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default`` when the key is absent or expired."""
        return _decode(self.client.get_task_key(self.identity, key), default)

    def set(self, key: str, value: Any, *, retention: Retention = None) -> None:
        """Write or overwrite a key. ``retention``: a ``timedelta`` (expires that long from now),
        ``NEVER_EXPIRE`` (ours or Airflow's ``timedelta.max``), or None for the service's
        configured default retention (decided by the server)."""
        self.client.put_task_key(self.identity, key, _encode(value), _expiry(retention))

    def delete(self, key: str) -> None:
        """Delete one key; a key that is not there is fine."""
        self.client.delete_task_key(self.identity, key)

    def clear(self) -> None:
        """Delete every key of this task instance (its own map index only)."""
        self.client.clear_task_keys(self.identity)

    async def aget(self, key: str, default: Any = None) -> Any:
        return _decode(await self.client.aget_task_key(self.identity, key), default)

    async def aset(self, key: str, value: Any, *, retention: Retention = None) -> None:
        await self.client.aput_task_key(self.identity, key, _encode(value), _expiry(retention))

    async def adelete(self, key: str) -> None:
        await self.client.adelete_task_key(self.identity, key)

    async def aclear(self) -> None:
        await self.client.aclear_task_keys(self.identity)

    def asset(self, *, name: str | None = None, uri: str | None = None) -> AssetStateStore:
        """One asset's keys through the same connection (like ``context["asset_state_store"]``)."""
        return AssetStateStore(name=name, uri=uri, client=self.client)


class AssetStateStore(_Connected):
    """The keys of one asset, by ``name`` or ``uri`` (a write registers a missing asset with
    both): ``get``, ``set``, ``delete``, ``clear`` and their async twins. Asset keys never
    expire."""

    def __init__(self, *, name: str | None = None, uri: str | None = None, url: str | None = None,
                 api_key: str | None = None, client: ServiceClient | None = None, **options: Any):
        if not name and not uri:
            raise ValueError("pass name= or uri= (or both)")
        self.identity = AssetIdentity(name or None, uri or None)
        super().__init__(client, url, api_key, options)

    def __repr__(self) -> str:
        return f"<AssetStateStore name={self.identity.name!r} uri={self.identity.uri!r}>"

    def get(self, key: str, default: Any = None) -> Any:
        return _decode(self.client.get_asset_key(self.identity, key), default)

    def set(self, key: str, value: Any) -> None:
        self.client.put_asset_key(self.identity, key, _encode(value))

    def delete(self, key: str) -> None:
        self.client.delete_asset_key(self.identity, key)

    def clear(self) -> None:
        self.client.clear_asset_keys(self.identity)

    async def aget(self, key: str, default: Any = None) -> Any:
        return _decode(await self.client.aget_asset_key(self.identity, key), default)

    async def aset(self, key: str, value: Any) -> None:
        await self.client.aput_asset_key(self.identity, key, _encode(value))

    async def adelete(self, key: str) -> None:
        await self.client.adelete_asset_key(self.identity, key)

    async def aclear(self) -> None:
        await self.client.aclear_asset_keys(self.identity)
