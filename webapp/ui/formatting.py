"""How the UI shows times and values. Times are always UTC, with a relative form beside
them ("in 6 hours", "expired 2 minutes ago") from the humanize library."""

from __future__ import annotations

import json
from datetime import datetime

import humanize
from flask import Blueprint

from ..store import COUNT_CAP

# Values longer than this are collapsed behind <details> so a table of keys stays scannable.
LONG_VALUE_LINES = 8
LONG_VALUE_CHARS = 300
PREVIEW_CHARS = 80


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    if moment > now:
        return "in " + humanize.naturaldelta(moment - now)
    return humanize.naturaldelta(now - moment) + " ago"


def expiry(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return "never"
    if expires_at <= now:
        return "expired " + humanize.naturaldelta(now - expires_at) + " ago"
    return "in " + humanize.naturaldelta(expires_at - now)


def pretty_json(value_json: str) -> str:
    return json.dumps(json.loads(value_json), indent=2, ensure_ascii=False)


def is_long(text: str) -> bool:
    return len(text) > LONG_VALUE_CHARS or text.count("\n") >= LONG_VALUE_LINES


def preview(value_json: str) -> str:
    return value_json if len(value_json) <= PREVIEW_CHARS else value_json[:PREVIEW_CHARS] + "…"


def count(number: int) -> str:
    """Thousands separated; a count that stopped at the cap says so."""
    return f"more than {COUNT_CAP:,}" if number > COUNT_CAP else f"{number:,}"


def register(bp: Blueprint) -> None:
    for function in (utc, ago, expiry, pretty_json, is_long, preview, count):
        bp.add_app_template_global(function)
