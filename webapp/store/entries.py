"""What the store hands back for a stored key: an entry, and a change from one entry to
another (either side None when the key was absent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidInput


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    value_json: str
    version: int
    updated_at: datetime
    expires_at: datetime | None
    written_by: dict[str, Any] | None = None  # who last wrote it, where the kind records that

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)

    @property
    def etag(self) -> str:
        # Row id and version: a key deleted and re-created never matches an old form.
        return f'"{self.id}.{self.version}"'

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


ENTRY_COLUMNS = ("id", "key", "value", "version", "updated_at", "expires_at")


@dataclass(frozen=True)
class Change:
    before: Entry | None
    after: Entry | None
    history_id: int | None = None  # the history row recording it (an undo names it)


def parse_etag(raw: str) -> tuple[int, int]:
    try:
        row_id, version = raw.strip().removeprefix("W/").strip('"').split(".")
        return int(row_id), int(version)
    except ValueError:
        raise InvalidInput("If-Match", f"{raw!r} is not an ETag of this API") from None
