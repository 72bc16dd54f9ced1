"""Initial schema: DAG runs, task instances, the task store and admin API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import AutoIncrementBigInteger, LongText, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    options = mysql_table_options()
    op.create_table(
        "dag_run",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("logical_date", UTCDateTime()),
        sa.Column("start_date", UTCDateTime()),
        sa.Column("end_date", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("dag_id", "run_id", name="dag_run_dag_id_run_id_uq"),
        **options,
    )
    op.create_index("dag_run_dag_id_state_idx", "dag_run", ["dag_id", "state"])

    op.create_table(
        "task_instance",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("dag_run_id", sa.Integer, sa.ForeignKey("dag_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20)),
        sa.Column("try_number", sa.Integer, nullable=False),
        sa.Column("start_date", UTCDateTime()),
        sa.Column("end_date", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("dag_id", "run_id", "task_id", "map_index", name="task_instance_ti_uq"),
        **options,
    )
    op.create_index("task_instance_dag_run_idx", "task_instance", ["dag_run_id", "task_id", "map_index"])

    op.create_table(
        "task_state",
        sa.Column("id", AutoIncrementBigInteger, primary_key=True),
        sa.Column("dag_run_id", sa.Integer, sa.ForeignKey("dag_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.UniqueConstraint("dag_run_id", "task_id", "map_index", "key", name="task_state_ti_key_uq"),
        # Never reuse a deleted row's id: ETags are (id, version), and a re-created key must not match.
        sqlite_autoincrement=True,
        **options,
    )
    op.create_index("task_state_expires_at_idx", "task_state", ["expires_at"])

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        **options,
    )


def downgrade() -> None:
    op.drop_table("api_key")
    op.drop_table("task_state")
    op.drop_table("task_instance")
    op.drop_table("dag_run")
