"""Roles, one rule for the UI and the admin API: viewer reads, editor also changes stored
keys, admin also changes runs and task instances, mints tokens, manages users and keys.

API keys may also have the ``service`` role, for a service such as Airflow's storage backend:
it reads and writes keys by identity through ``/api/v2/service`` (creating runs, task
instances and assets on first write) and reports task states, and may do nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden, InvalidInput

ROLES = ("viewer", "editor", "admin")  # people's, and API keys'
SERVICE = "service"
KEY_ROLES = (*ROLES, SERVICE)  # API keys only
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def validate(role: str, allowed: tuple[str, ...] = ROLES) -> str:
    if role not in allowed:
        raise InvalidInput("role", f"must be one of {', '.join(allowed)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in person or an API key. ``name`` goes into the history."""

    name: str
    role: str

    def require(self, needed: str) -> None:
        if not self.has(needed):
            raise Forbidden(f"This needs the {needed} role; {self.name} has {self.role}")

    def has(self, needed: str) -> bool:
        if needed == SERVICE:  # the service API: service keys, and admins
            return self.role in (SERVICE, "admin")
        return self.role != SERVICE and _RANK[self.role] >= _RANK[needed]
