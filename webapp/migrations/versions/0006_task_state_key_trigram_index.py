"""PostgreSQL: a trigram index on key names, so a substring search does not read every key.

Needs the pg_trgm extension, which ships with PostgreSQL and which a database owner may
create (it is a trusted extension since PostgreSQL 13). Where it cannot be created, the
migration says so and goes on: search then reads every key, as on the other databases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import logging

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
INDEX = "task_state_key_trgm_idx"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); key search will read every key", exc.orig)
        return
    op.create_index(INDEX, "task_state", ["key"], postgresql_using="gin", postgresql_ops={"key": "gin_trgm_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="task_state", if_exists=True)
