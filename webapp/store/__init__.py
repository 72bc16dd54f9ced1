"""Every rule of the task store: validation, expiry, upsert, delete, clear, versioned edits,
search and cleanup. The worker API, the admin API, the UI and the CLI all call these
functions; none of them talks to the ``task_state`` table directly.

Functions execute statements on the current session and leave the commit to the caller
(see ``webapp.transactions.committed``), so that a state change and a clear can share one
transaction (``clear_on_success``) and a change and its history row land together.
"""

from .cleanup import delete_expired, list_expired
from .counting import COUNT_CAP, capped_count
from .edits import (
    Change, Entry, add_entry, current_entry, delete_entry, extend_entry, get_entry, list_entries, parse_admin_expiry, parse_etag,
    patch_value, put_entry,
)
from .keys import (
    TaskInstanceScope, clear, delete_key, find_task_instance, live_condition, parse_ti_id, read_value_json,
    rows_to_clear, scope_of, write,
)
from .rules import (
    check_value_size, encode_value, expiry_for_retention, parse_json, parse_timestamp, parse_worker_put_body,
    validate_key, warn_if_oversized,
)
from .search import KeyHit, search_keys

__all__ = [
    "COUNT_CAP", "capped_count",
    "Change", "Entry", "KeyHit", "add_entry", "TaskInstanceScope", "check_value_size", "clear", "current_entry",
    "delete_entry", "delete_expired", "extend_entry", "delete_key", "encode_value", "expiry_for_retention",
    "find_task_instance", "get_entry", "list_entries", "list_expired", "live_condition", "parse_admin_expiry",
    "parse_etag", "parse_json", "parse_ti_id", "parse_timestamp", "parse_worker_put_body", "patch_value",
    "put_entry", "read_value_json", "rows_to_clear", "scope_of", "search_keys", "validate_key",
    "warn_if_oversized", "write",
]
