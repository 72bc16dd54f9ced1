"""Every kind of scope the store knows: cleanup and search go through all of them."""

from __future__ import annotations

from .asset_keys import ASSET_KEYS
from .scopes import TASK_KEYS, ScopeKind

KINDS: tuple[ScopeKind, ...] = (TASK_KEYS, ASSET_KEYS)
