"""Per-DAG and per-asset permissions at the door. Every route that names a DAG, an asset or
a task instance in its path answers 404 to a principal whose patterns leave it out, before
the view runs: one check for the UI, the admin API and the service API, so no route can
forget it. The 404 reads as for something that does not exist, so it confirms nothing.
Listings and search filter by the same patterns (``NamePatterns.condition``)."""

from __future__ import annotations

import uuid
from typing import Any

from .. import assets, runs
from ..errors import NotFound
from .roles import Principal


def check_route(principal: Principal, view_args: dict[str, Any] | None) -> None:
    if principal.unrestricted or not view_args:
        return
    if "dag_id" in view_args:
        principal.require_dag(view_args["dag_id"])
    if "asset_id" in view_args and not principal.assets.everything:
        try:
            asset = assets.get(int(view_args["asset_id"]))
        except (NotFound, ValueError):
            return  # the view answers for an asset that does not exist
        if not principal.assets.allows(asset.name):
            raise assets.asset_id_not_found(view_args["asset_id"])
    if "ti_id" in view_args and not principal.dags.everything:
        try:
            ti = runs.get_task_instance_by_id(uuid.UUID(str(view_args["ti_id"])))
        except (NotFound, ValueError):
            return
        if not principal.dags.allows(ti.dag_id):
            raise runs.task_instance_id_not_found(ti.id)
