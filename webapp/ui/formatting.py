"""How the UI shows times and values. Times are always UTC, with a relative form beside
them ("in 6 hours", "expired 2 minutes ago"), rounded to the nearest of the unit shown."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Blueprint
from markupsafe import Markup, escape
from pygments.lexers import JsonLexer
from pygments.token import STANDARD_TYPES, Punctuation, Whitespace

from ..store import COUNT_CAP

# Values longer than this are collapsed behind <details> so a table of keys stays scannable.
LONG_VALUE_LINES = 8
LONG_VALUE_CHARS = 300
PREVIEW_CHARS = 80


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# The units a span is shown in, largest first, with the least span each is used for: days up
# to 60 (a retention of 30 days reads "in 30 days", not "in a month"), then months.
SPAN_UNITS = (("year", 365 * 86400, 365 * 86400), ("month", 30.44 * 86400, 60 * 86400),
              ("day", 86400, 86400), ("hour", 3600, 3600), ("minute", 60, 60), ("second", 1, 1))


def span(delta: timedelta) -> str:
    """A span in its largest unit, rounded to the nearest: 1 day 23:59 is "2 days", 23 days
    "23 days", 23:59:40 "1 day" (a rounding that reaches the next unit is shown in it)."""
    seconds = abs(delta.total_seconds())
    if seconds < 1:
        return "a moment"
    for index, (name, size, least) in enumerate(SPAN_UNITS):
        if seconds >= least or index == len(SPAN_UNITS) - 1:
            count = int(seconds / size + 0.5)
            if index > 0:
                bigger_name, bigger_size, bigger_least = SPAN_UNITS[index - 1]
                if count * size >= bigger_least:
                    name, count = bigger_name, int(count * size / bigger_size + 0.5)
            return f"{count} {name}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    if moment > now:
        return "in " + span(moment - now)
    return span(now - moment) + " ago"


def expiry(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return "never"
    if expires_at <= now:
        return "expired " + span(now - expires_at) + " ago"
    return "in " + span(expires_at - now)


JSON_TYPES = {"{": "object", "[": "array", '"': "string", "t": "boolean", "f": "boolean", "n": "null"}


def value_facts(value_json: str) -> str:
    """A stored value's JSON type and size as stored: "object · 1.2 kB"."""
    kind = JSON_TYPES.get(value_json[:1], "number")
    size = len(value_json.encode())
    if size < 1024:
        shown = f"{size} B"
    elif size < 1024 * 1024:
        shown = f"{size / 1024:.1f} kB"
    else:
        shown = f"{size / 1024 / 1024:.1f} MB"
    return f"{kind} · {shown}"


def pretty_json(value_json: str) -> str:
    return json.dumps(json.loads(value_json), indent=2, ensure_ascii=False)


# Highlighting costs about 0.25 ms a kilobyte (0.25-0.5 s and 3.2 MB of markup for a 1 MB
# value, on a busy 2-core machine) where escaping costs 0.006 ms; a page shows up to 100 values
# and a running task instance's page is rendered again every 3 seconds. Up to 10,000 characters
# a value costs at most ~3 ms and ~35 kB; longer ones, which nobody reads token by token, are
# shown as escaped plain text.
HIGHLIGHT_MAX_CHARS = 10_000
JSON_LEXER = JsonLexer(ensurenl=False)
# Punctuation and indentation stay plain text: a span around each would triple the markup.
UNCOLOURED = {Punctuation, Whitespace}


def highlighted_json(text: str) -> Markup:
    """Pretty-printed JSON as HTML: Pygments' JSON tokens, keys, strings, numbers and
    constants each in a span whose class is "j-" and Pygments' short name (the classes its
    HtmlFormatter gives; static/json.css colours them, since the Content-Security-Policy allows
    no inline style). Written here rather than by HtmlFormatter, which leaves quotes raw: every
    character is escaped as Jinja escapes it everywhere else in the UI. Beyond
    HIGHLIGHT_MAX_CHARS, escaped plain text."""
    if len(text) > HIGHLIGHT_MAX_CHARS:
        return escape(text)
    parts = []
    for kind, part in JSON_LEXER.get_tokens(text):
        short = None if kind in UNCOLOURED else STANDARD_TYPES.get(kind)
        parts.append(f'<span class="j-{short}">{escape(part)}</span>' if short else escape(part))
    return Markup("".join(parts))


def is_long(text: str) -> bool:
    return len(text) > LONG_VALUE_CHARS or text.count("\n") >= LONG_VALUE_LINES


def preview(value_json: str) -> str:
    return value_json if len(value_json) <= PREVIEW_CHARS else value_json[:PREVIEW_CHARS] + "…"


def count(number: int) -> str:
    """Thousands separated; a count that stopped at the cap says so."""
    return f"more than {COUNT_CAP:,}" if number > COUNT_CAP else f"{number:,}"


def register(bp: Blueprint) -> None:
    for function in (utc, ago, expiry, pretty_json, highlighted_json, is_long, preview, count, value_facts):
        bp.add_app_template_global(function)
