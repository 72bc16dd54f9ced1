"""The store's input rules: what a key, a value and an expiry may be, and how they are read
from requests. Pure functions: no database."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import InvalidInput
from ..models import KEY_LENGTH, utcnow

log = logging.getLogger("webapp.store")

PUT_BODY_FIELDS = ("value", "expires_at")


# Unicode's control characters (category Cc): U+0000-U+001F and U+007F-U+009F.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def validate_key(key: str) -> str:
    """Every entry point's key rule: the worker API, the admin API, the UI and the CLI."""
    if not key:
        raise InvalidInput("key", "must not be empty")
    if len(key) > KEY_LENGTH:
        raise InvalidInput("key", f"is {len(key)} characters long; the limit is {KEY_LENGTH}")
    if (control := CONTROL_CHARACTER.search(key)) is not None:
        raise InvalidInput("key", f"contains the control character U+{ord(control.group()):04X} "
                                  f"at position {control.start()}")
    if key.isspace():
        raise InvalidInput("key", "must contain a character other than spaces")
    return key


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes | str, field: str = "body", *, constants_as_floats: bool = False) -> Any:
    """Strict JSON: NaN and ±Infinity are refused. With ``constants_as_floats`` they parse as
    floats instead, for a caller that checks every field (``encode_value`` refuses them) and
    so can name the field that holds one."""
    try:
        parsed = json.loads(raw, parse_constant=float if constants_as_floats else _reject_constant)
    except RecursionError:
        raise InvalidInput(field, "is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput(field, f"is not valid JSON ({exc})") from None
    return parsed


# Arrays and objects may nest this deep: every reader (the UI's pretty-printing, the admin
# API's serialisation, Airflow's client) handles it, where ~1,000 levels broke them.
MAX_VALUE_DEPTH = 100


def value_depth(value: Any) -> int:
    """How deep arrays and objects nest in a decoded JSON value (a scalar is 0)."""
    depth, level = 0, [(value, 0)]
    while level:
        item, at = level.pop()
        if isinstance(item, dict | list):
            depth = max(depth, at + 1)
            level.extend((child, at + 1) for child in (item.values() if isinstance(item, dict) else item))
    return depth


def encode_value(value: Any) -> str:
    """The stored form of a value: compact JSON text, written back exactly as stored."""
    if value is None:
        raise InvalidInput("value", "must not be null; delete the key instead")
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidInput("value", "NaN and Infinity are not JSON values") from None
    except RecursionError:
        raise InvalidInput("value", "is nested too deeply") from None
    except TypeError as exc:
        raise InvalidInput("value", f"is not a JSON value ({exc})") from None
    # Counting brackets is C-speed and bounds the depth; only a value with more brackets than
    # the limit is walked.
    if encoded.count("[") + encoded.count("{") > MAX_VALUE_DEPTH and (depth := value_depth(value)) > MAX_VALUE_DEPTH:
        raise InvalidInput("value", f"nests arrays and objects {depth} deep; the limit is {MAX_VALUE_DEPTH}")
    try:
        # "\ud800" is valid JSON syntax but not Unicode: no database can store it as text.
        encoded.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("value", "contains a lone UTF-16 surrogate (\\ud800-\\udfff), "
                                    "which is not Unicode") from None
    return encoded


def check_value_size(encoded: str, limit: int) -> None:
    """The soft limit the admin API and UI enforce (0 means no limit)."""
    size = len(encoded.encode("utf-8"))
    if limit and size > limit:
        raise InvalidInput("value", f"is {size} bytes of JSON; the limit is {limit} bytes")


def warn_if_oversized(whose: str, key: str, encoded: str, limit: int) -> None:
    """Workers may exceed the soft limit: a running task must not break on it. ``whose``
    names the scope in the log ("task instance <id>")."""
    size = len(encoded.encode("utf-8"))
    if limit and size > limit:
        log.warning("value of %r for %s is %d bytes, over max_value_bytes=%d; stored anyway", key, whose, size, limit)


def parse_timestamp(raw: Any, field: str = "expires_at") -> datetime | None:
    """ISO 8601 text or null. A timestamp without an offset is read as UTC."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput(field, f"must be an ISO 8601 timestamp or null, not {type(raw).__name__}")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(field, f"{raw!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        raise InvalidInput(field, f"{raw!r} is out of range in UTC") from None


def parse_worker_put_body(raw: bytes) -> tuple[str, datetime | None]:
    """The worker API's PUT body: ``{"value": <json, not null>, "expires_at": <ISO 8601 or null>}``."""
    body = parse_json(raw, constants_as_floats=True)  # NaN then fails naming its field
    if not isinstance(body, dict):
        raise InvalidInput("body", f"must be a JSON object, not {_json_type(body)}")
    unexpected = [name for name in body if name not in PUT_BODY_FIELDS]
    if unexpected:
        raise InvalidInput(unexpected[0], f"is not a field of this body (allowed: {', '.join(PUT_BODY_FIELDS)})")
    if "value" not in body:
        raise InvalidInput("value", "is required")
    return encode_value(body["value"]), parse_timestamp(body.get("expires_at"))


def parse_asset_put_body(raw: bytes) -> str:
    """The worker API's asset PUT body: ``{"value": <json, not null>}`` (asset keys never expire)."""
    body = parse_json(raw, constants_as_floats=True)
    if not isinstance(body, dict):
        raise InvalidInput("body", f"must be a JSON object, not {_json_type(body)}")
    unexpected = [name for name in body if name != "value"]
    if unexpected:
        raise InvalidInput(unexpected[0], "is not a field of this body (allowed: value; asset keys never expire)")
    if "value" not in body:
        raise InvalidInput("value", "is required")
    return encode_value(body["value"])


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def expiry_for_retention(retention_days: int, now: datetime | None = None) -> datetime | None:
    """The configured default: ``now + retention_days``, or never when it is 0."""
    if retention_days == 0:
        return None
    return (now or utcnow()) + timedelta(days=retention_days)
