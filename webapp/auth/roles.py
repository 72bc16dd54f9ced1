"""Roles, one rule for the UI and the admin API: viewer reads, editor also changes stored
keys, admin also changes runs and task instances, mints tokens, manages users and keys."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Forbidden, InvalidInput

ROLES = ("viewer", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def validate(role: str) -> str:
    if role not in _RANK:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in person or an API key. ``name`` goes into the history."""

    name: str
    role: str

    def require(self, needed: str) -> None:
        if _RANK[self.role] < _RANK[needed]:
            raise Forbidden(f"This needs the {needed} role; {self.name} has {self.role}")

    def has(self, needed: str) -> bool:
        return _RANK[self.role] >= _RANK[needed]
