"""History of changes people and tools make to stored keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import AutoIncrementBigInteger, LongText, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_change",
        sa.Column("id", AutoIncrementBigInteger, primary_key=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("old_value", LongText),
        sa.Column("new_value", LongText),
        sa.Column("old_expires_at", UTCDateTime()),
        sa.Column("new_expires_at", UTCDateTime()),
        **mysql_table_options(),
    )
    op.create_index("key_change_ti_idx", "key_change", ["dag_id", "run_id", "task_id", "map_index", "changed_at"])


def downgrade() -> None:
    op.drop_table("key_change")
