"""Every rule of the store: validation, expiry, worker reads and writes, versioned edits and
their history, search, cleanup and key counts, written once against the definitions of the
kinds of scope: task instances (``scopes``) and assets (``asset_keys``). The worker API, the
admin API, the UI and the CLI all call these functions; none of them touches a keys table
directly.

Functions execute statements on the current session (or the worker's connection) and leave
the commit to the caller (``webapp.transactions``), so that a state change and a clear can
share one transaction (``clear_on_success``), and a change and its history row land together.
"""

from .access import clear, clear_addressed, delete_key, find, live_condition, read_value_json, write
from .asset_keys import ASSET_KEYS, AssetScope, asset_address, name_hash, scope_of_asset, worker_names, written_by
from .cleanup import count_expired, delete_expired, delete_orphaned_asset_keys, list_expired
from .counting import (
    COUNT_CAP,
    asset_key_summaries,
    asset_keys_written_by,
    capped_count,
    count_entries,
    dag_key_counts_by_dag,
    key_counts_by_run,
    key_counts_by_task_instance,
    run_key_counts,
)
from .edits import (
    ENTRY_ORDERS,
    add_entry,
    admin_expiry,
    clear_entries,
    current_entry,
    delete_entry,
    extend_entry,
    get_entry,
    list_entries,
    patch_value,
    put_entry,
    undo_delete,
    undoable_delete,
)
from .entries import Change, Entry, parse_etag
from .expiring import ExpiringKey, expiring_keys
from .history import ACTIONS as HISTORY_ACTIONS
from .history import HistoryFilter, actors_of, changes_for
from .history import describe as describe_change
from .key_files import MAX_IMPORT_KEYS, export_document, import_keys, parse_key_file
from .kinds import KINDS
from .rules import (
    check_value_size,
    encode_value,
    expiry_for_retention,
    parse_asset_put_body,
    parse_json,
    parse_timestamp,
    parse_worker_put_body,
    validate_key,
    warn_if_oversized,
)
from .scopes import (
    TASK_INSTANCE_BY_ID,
    TASK_INSTANCE_BY_IDENTITY,
    TASK_KEYS,
    Address,
    Scope,
    ScopeKind,
    TaskInstanceScope,
    parse_ti_id,
    scope_of,
    task_instance_not_found,
    ti_not_found,
)
from .search import SEARCH_TEXT_LIMIT, KeyHit, search_keys
from .set_aside import delete_set_aside, list_set_aside, move_set_aside

__all__ = [
    "actors_of", "add_entry", "Address", "admin_expiry", "asset_address", "asset_key_summaries", "ASSET_KEYS",
    "asset_keys_written_by", "AssetScope", "capped_count", "Change", "changes_for", "check_value_size", "clear",
    "clear_addressed", "clear_entries", "COUNT_CAP", "count_entries", "count_expired", "current_entry",
    "delete_entry", "delete_expired", "describe_change", "ENTRY_ORDERS", "HISTORY_ACTIONS",
    "HistoryFilter", "delete_key", "delete_orphaned_asset_keys", "delete_set_aside",
    "encode_value", "Entry", "export_document", "import_keys", "MAX_IMPORT_KEYS",
    "parse_key_file", "ExpiringKey", "expiring_keys", "expiry_for_retention", "extend_entry", "find",
    "get_entry", "dag_key_counts_by_dag", "key_counts_by_run", "run_key_counts",
    "key_counts_by_task_instance", "KeyHit", "KINDS", "list_entries", "list_expired", "list_set_aside",
    "live_condition", "move_set_aside", "name_hash", "parse_asset_put_body", "parse_etag", "parse_json",
    "parse_ti_id", "parse_timestamp", "parse_worker_put_body", "patch_value", "put_entry", "read_value_json",
    "Scope", "scope_of", "scope_of_asset", "ScopeKind", "SEARCH_TEXT_LIMIT", "search_keys",
    "TASK_INSTANCE_BY_ID",
    "TASK_INSTANCE_BY_IDENTITY", "task_instance_not_found", "TASK_KEYS", "TaskInstanceScope", "ti_not_found",
    "undo_delete", "undoable_delete", "validate_key", "warn_if_oversized", "worker_names", "write", "written_by",
]
