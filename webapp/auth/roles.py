"""Roles, one rule for the UI and the admin API: viewer reads, editor also changes stored
keys, admin also changes runs and task instances, mints tokens, manages users and keys.

API keys may also have a role that opens one door and nothing else: ``service``, for a service
such as Airflow's storage backend, reads and writes keys by identity through
``/api/v2/service`` (creating runs, task instances and assets on first write) and reports task
states; ``metrics``, for a Prometheus server, reads ``/metrics``. Admins may use both doors."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden, InvalidInput, NotFound
from .name_patterns import EVERYTHING, NamePatterns

ROLES = ("viewer", "editor", "admin")  # people's, and API keys'
SERVICE = "service"
METRICS = "metrics"
# API keys only: the one door each opens.
NARROW_KEY_ROLES = {SERVICE: "/api/v2/service", METRICS: "/metrics"}
KEY_ROLES = (*ROLES, *NARROW_KEY_ROLES)
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def validate(role: str, allowed: tuple[str, ...] = ROLES) -> str:
    if role not in allowed:
        raise InvalidInput("role", f"must be one of {', '.join(allowed)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in person or an API key. ``name`` goes into the history.
    ``dags`` and ``assets``: the DAG ids and asset names it may see (``name_patterns``)."""

    name: str
    role: str
    dags: NamePatterns = EVERYTHING
    assets: NamePatterns = EVERYTHING

    @property
    def unrestricted(self) -> bool:
        return self.dags.everything and self.assets.everything

    def require_dag(self, dag_id: str) -> None:
        """A DAG outside the patterns is not found, as if it did not exist: a 403 would say it does."""
        if not self.dags.allows(dag_id):
            raise NotFound(f"DAG {dag_id!r} not found", field="dag_id")

    def require_asset(self, name: str, field: str = "asset") -> None:
        if not self.assets.allows(name):
            raise NotFound(f"Asset {name!r} not found", field=field)

    def require_unrestricted(self, what: str) -> None:
        if not self.unrestricted:
            raise Forbidden(f"{what} needs an admin without DAG or asset limits; {self.name} is limited")

    def require_access_admin(self) -> None:
        """Managing people and API keys (and reading the audit log) needs an admin who sees
        everything: a DAG-limited admin could otherwise mint itself an unlimited key."""
        self.require("admin")
        self.require_unrestricted("Managing people and API keys")

    def require_new_asset(self, name: str) -> None:
        """Registering an asset (or a key of one, creating it) whose name is outside the patterns."""
        if not self.assets.allows(name):
            raise Forbidden(f"Asset name {name!r} is outside the asset names {self.name} may use")

    def require(self, needed: str) -> None:
        if not self.has(needed):
            raise Forbidden(f"This needs the {needed} role; {self.name} has {self.role}")

    def has(self, needed: str) -> bool:
        if needed in NARROW_KEY_ROLES:  # a narrow role's door: its keys, and admins
            return self.role in (needed, "admin")
        return self.role not in NARROW_KEY_ROLES and _RANK[self.role] >= _RANK[needed]
