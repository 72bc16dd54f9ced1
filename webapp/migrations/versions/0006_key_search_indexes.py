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


def _names(table: str) -> tuple[str, str, dict[str, str]]:
    """The PostgreSQL index, the SQLite FTS5 table and its triggers for a keys table; the store's
    ``ScopeKind.sqlite_search_index`` names the FTS5 table too."""
    search = f"{table}_key_search"
    triggers = {
        f"{search}_insert": f"""
            CREATE TRIGGER {search}_insert AFTER INSERT ON {table} BEGIN
                INSERT INTO {search}(rowid, key) VALUES (new.id, new.key);
            END""",
        f"{search}_delete": f"""
            CREATE TRIGGER {search}_delete AFTER DELETE ON {table} BEGIN
                INSERT INTO {search}({search}, rowid, key) VALUES ('delete', old.id, old.key);
            END""",
        f"{search}_update": f"""
            CREATE TRIGGER {search}_update AFTER UPDATE OF key ON {table} BEGIN
                INSERT INTO {search}({search}, rowid, key) VALUES ('delete', old.id, old.key);
                INSERT INTO {search}(rowid, key) VALUES (new.id, new.key);
            END""",
    }
    return f"{table}_key_trgm_idx", search, triggers


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


def create_key_search_index(table: str) -> None:
    """A trigram index over ``table.key`` where the database has one (later migrations call it
    for new keys tables)."""
    bind = op.get_bind()
    pg_index, search, triggers = _names(table)
    if bind.dialect.name == "postgresql":
        if _pg_trgm(bind):
            op.create_index(pg_index, table, ["key"], postgresql_using="gin", postgresql_ops={"key": "gin_trgm_ops"})
    elif bind.dialect.name == "sqlite" and _sqlite_has_fts5_trigram():
        op.execute(f"CREATE VIRTUAL TABLE {search} USING fts5(key, content='{table}', "
                   "content_rowid='id', tokenize='trigram')")
        op.execute(f"INSERT INTO {search}({search}) VALUES ('rebuild')")
        for statement in triggers.values():
            op.execute(statement)


def drop_key_search_index(table: str) -> None:
    bind = op.get_bind()
    pg_index, search, triggers = _names(table)
    if bind.dialect.name == "postgresql":
        op.drop_index(pg_index, table_name=table, if_exists=True)
    elif bind.dialect.name == "sqlite":
        for trigger in triggers:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {search}")


def upgrade() -> None:
    create_key_search_index("task_state")


def downgrade() -> None:
    drop_key_search_index("task_state")
