"""Trigram indexes on key names, so a substring search does not read every key.

PostgreSQL: a GIN index over pg_trgm, which serves ILIKE directly. pg_trgm ships with
PostgreSQL and a database owner may create it (a trusted extension since PostgreSQL 13).

SQLite: an FTS5 table with the trigram tokenizer (SQLite 3.34+) over ``task_state.key``,
kept in step by triggers; search uses it to find candidate rows and LIKE to decide.

Where the extension or tokenizer is missing, the migration logs a warning and goes on:
search then reads every key, as it does on MariaDB.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import logging
import sqlite3

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
PG_INDEX = "task_state_key_trgm_idx"
SQLITE_TABLE = "task_state_key_search"  # webapp.store.search names it too

SQLITE_TRIGGERS = {
    "task_state_key_search_insert": f"""
        CREATE TRIGGER task_state_key_search_insert AFTER INSERT ON task_state BEGIN
            INSERT INTO {SQLITE_TABLE}(rowid, key) VALUES (new.id, new.key);
        END""",
    "task_state_key_search_delete": f"""
        CREATE TRIGGER task_state_key_search_delete AFTER DELETE ON task_state BEGIN
            INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, key) VALUES ('delete', old.id, old.key);
        END""",
    "task_state_key_search_update": f"""
        CREATE TRIGGER task_state_key_search_update AFTER UPDATE OF key ON task_state BEGIN
            INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, key) VALUES ('delete', old.id, old.key);
            INSERT INTO {SQLITE_TABLE}(rowid, key) VALUES (new.id, new.key);
        END""",
}


def _pg_trgm(bind) -> bool:
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); key search will read every key", exc.orig)
        return False
    return True


def _sqlite_has_fts5_trigram() -> bool:
    # Probed on a scratch database with the same library: a failed CREATE inside the
    # migration's transaction would need a savepoint, which pysqlite handles badly.
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error as exc:
        log.warning("SQLite has no FTS5 trigram tokenizer (%s); key search will read every key", exc)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if _pg_trgm(bind):
            op.create_index(PG_INDEX, "task_state", ["key"], postgresql_using="gin",
                            postgresql_ops={"key": "gin_trgm_ops"})
    elif bind.dialect.name == "sqlite" and _sqlite_has_fts5_trigram():
        op.execute(f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(key, content='task_state', "
                   "content_rowid='id', tokenize='trigram')")
        op.execute(f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('rebuild')")
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_index(PG_INDEX, table_name="task_state", if_exists=True)
    elif bind.dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {SQLITE_TABLE}")
