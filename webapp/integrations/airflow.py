"""Airflow 3.3's state-store backend, kept in Task Store.

In ``airflow.cfg`` (or the environment) of Airflow's API server, where the execution API runs::

    [state_store]
    backend = webapp.integrations.airflow.TaskStoreBackend

    [taskstore]
    url = http://taskstore:8080
    api_key = <taskstore api-keys create airflow --role service>

    # AIRFLOW__STATE_STORE__BACKEND=webapp.integrations.airflow.TaskStoreBackend
    # AIRFLOW__TASKSTORE__URL=http://taskstore:8080
    # AIRFLOW__TASKSTORE__API_KEY=...

Airflow's execution API then keeps every worker's ``context["task_state_store"]`` and
``context["asset_state_store"]`` here, over HTTP to the service API (``/api/v2/service``):
task keys by (dag_id, run_id, task_id, map_index), asset keys by name and URI. Values are the
JSON text Airflow hands over, stored and returned byte for byte; ``expires_at`` is passed
through (None: never expires). Airflow gives the server side an asset's integer id only: it is
resolved to the asset's name and URI through Airflow's metadata database (the ``session``
Airflow passes, or Airflow's own session when none), once per asset and process.

This module imports Airflow's ``airflow.state`` (to subclass ``BaseStoreBackend``) and
``webapp.integrations.service_client``; nothing of the service (no Flask, no SQLAlchemy of its
own: Airflow's models are imported when an asset id is first resolved).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.state import AssetScope, BaseStoreBackend, TaskScope

from webapp.integrations.service_client import (
    AssetIdentity,
    ServiceClient,
    ServiceSettings,
    TaskIdentity,
    TaskStoreConfigurationError,
    load_settings,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

__all__ = ["TaskStoreBackend", "TaskStoreConfigurationError"]

log = logging.getLogger(__name__)

ASSET_CACHE_SIZE = 4096


class UnknownAssetError(LookupError):
    """Airflow's metadata database has no asset with the id Airflow passed."""


def _core_conf() -> Any:
    from airflow.configuration import conf

    return conf


class TaskStoreBackend(BaseStoreBackend):
    """Keeps Airflow's task and asset state in Task Store (see the module's docstring).

    Airflow builds it with no arguments, reading ``[taskstore]`` from its own configuration;
    a misconfiguration raises ``TaskStoreConfigurationError`` naming the setting. Tests and
    scripts may pass ``url``, ``api_key`` and the other settings, or a ready ``client``.

    ``cleanup()`` does nothing: expired keys are the service's to collect (``taskstore clean``).
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, client: ServiceClient | None = None,
                 **options: Any):
        if client is None:
            settings: ServiceSettings = load_settings(url, api_key, conf=_core_conf(), **options)
            client = ServiceClient(settings)
        self.client = client
        self._asset_names: OrderedDict[int, AssetIdentity] = OrderedDict()
        self._asset_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TaskStoreBackend {self.client.settings.url}>"

    # --- BaseStoreBackend: sync -------------------------------------------------------------

    def get(self, scope: TaskScope | AssetScope, key: str, *, session: Session | None = None) -> str | None:
        match scope:
            case TaskScope():
                return self.client.get_task_key(_task(scope), key)
            case AssetScope():
                return self.client.get_asset_key(self._asset(scope, session), key)
        raise TypeError(_not_a_scope(scope))

    def set(self, scope: TaskScope | AssetScope, key: str, value: str, *, expires_at: datetime | None = None,
            session: Session | None = None) -> None:
        match scope:
            case TaskScope():
                if _expired(expires_at):  # already past: gone at once, as the service treats it
                    self.client.delete_task_key(_task(scope), key)
                else:
                    self.client.put_task_key(_task(scope), key, value, expires_at)
            case AssetScope():  # asset keys never expire
                self.client.put_asset_key(self._asset(scope, session), key, value)
            case _:
                raise TypeError(_not_a_scope(scope))

    def delete(self, scope: TaskScope | AssetScope, key: str, *, session: Session | None = None) -> None:
        match scope:
            case TaskScope():
                self.client.delete_task_key(_task(scope), key)
            case AssetScope():
                self.client.delete_asset_key(self._asset(scope, session), key)
            case _:
                raise TypeError(_not_a_scope(scope))

    def clear(self, scope: TaskScope | AssetScope, *, all_map_indices: bool = False,
              session: Session | None = None) -> None:
        match scope:
            case TaskScope():
                self.client.clear_task_keys(_task(scope), all_map_indices=all_map_indices)
            case AssetScope():
                self.client.clear_asset_keys(self._asset(scope, session))
            case _:
                raise TypeError(_not_a_scope(scope))

    # --- BaseStoreBackend: async (httpx.AsyncClient; nothing blocks the event loop) ----------

    async def aget(self, scope: TaskScope | AssetScope, key: str, *,
                   session: AsyncSession | None = None) -> str | None:
        match scope:
            case TaskScope():
                return await self.client.aget_task_key(_task(scope), key)
            case AssetScope():
                return await self.client.aget_asset_key(await self._aasset(scope, session), key)
        raise TypeError(_not_a_scope(scope))

    async def aset(self, scope: TaskScope | AssetScope, key: str, value: str, *, expires_at: datetime | None = None,
                   session: AsyncSession | None = None) -> None:
        match scope:
            case TaskScope():
                if _expired(expires_at):
                    await self.client.adelete_task_key(_task(scope), key)
                else:
                    await self.client.aput_task_key(_task(scope), key, value, expires_at)
            case AssetScope():
                await self.client.aput_asset_key(await self._aasset(scope, session), key, value)
            case _:
                raise TypeError(_not_a_scope(scope))

    async def adelete(self, scope: TaskScope | AssetScope, key: str, *, session: AsyncSession | None = None) -> None:
        match scope:
            case TaskScope():
                await self.client.adelete_task_key(_task(scope), key)
            case AssetScope():
                await self.client.adelete_asset_key(await self._aasset(scope, session), key)
            case _:
                raise TypeError(_not_a_scope(scope))

    async def aclear(self, scope: TaskScope | AssetScope, *, all_map_indices: bool = False,
                     session: AsyncSession | None = None) -> None:
        match scope:
            case TaskScope():
                await self.client.aclear_task_keys(_task(scope), all_map_indices=all_map_indices)
            case AssetScope():
                await self.client.aclear_asset_keys(await self._aasset(scope, session))
            case _:
                raise TypeError(_not_a_scope(scope))

    # --- assets: Airflow's integer id -> name and URI ---------------------------------------

    def _asset(self, scope: AssetScope, session: Session | None) -> AssetIdentity:
        if scope.name is not None or scope.uri is not None:
            return AssetIdentity(scope.name, scope.uri)
        if (known := self._cached(scope.asset_id)) is not None:
            return known
        if session is not None:
            return self._remember(scope.asset_id, _asset_row(session.get(_asset_model(), scope.asset_id), scope))
        from airflow.utils.session import create_session

        with create_session() as own:
            return self._remember(scope.asset_id, _asset_row(own.get(_asset_model(), scope.asset_id), scope))

    async def _aasset(self, scope: AssetScope, session: AsyncSession | None) -> AssetIdentity:
        if scope.name is not None or scope.uri is not None:
            return AssetIdentity(scope.name, scope.uri)
        if (known := self._cached(scope.asset_id)) is not None:
            return known
        if session is not None:
            row = await session.get(_asset_model(), scope.asset_id)
            return self._remember(scope.asset_id, _asset_row(row, scope))
        # Airflow's own (synchronous) session, in a thread: the event loop keeps running.
        return await asyncio.to_thread(self._asset, scope, None)

    def _cached(self, asset_id: int | None) -> AssetIdentity | None:
        with self._asset_lock:
            return self._asset_names.get(asset_id)

    def _remember(self, asset_id: int, identity: AssetIdentity) -> AssetIdentity:
        # An asset id names one (name, uri) for good: Airflow makes a new row for a new pair.
        with self._asset_lock:
            self._asset_names[asset_id] = identity
            while len(self._asset_names) > ASSET_CACHE_SIZE:
                self._asset_names.popitem(last=False)
        return identity


def _asset_model() -> type:
    from airflow.models.asset import AssetModel

    return AssetModel


def _asset_row(row: Any, scope: AssetScope) -> AssetIdentity:
    if row is None:
        raise UnknownAssetError(f"Airflow's metadata database has no asset with id {scope.asset_id}")
    return AssetIdentity(row.name, row.uri)


def _task(scope: TaskScope) -> TaskIdentity:
    return TaskIdentity(scope.dag_id, scope.run_id, scope.task_id, -1 if scope.map_index is None else scope.map_index)


def _expired(expires_at: datetime | None) -> bool:
    if expires_at is None:
        return False
    aware = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
    return aware <= datetime.now(UTC)


def _not_a_scope(scope: object) -> str:
    return f"scope must be a TaskScope or an AssetScope, not {type(scope).__name__}"
