"""Tries and mapped-task identity.

- ``task_instance_history``: one row per try that ended (its own id, try number, state, start,
  end): a task instance takes a new id for each new try, so an earlier try's token is refused.
- ``written_by_try`` on task keys and ``try_number`` on history rows: which try wrote a key.
- ``map_key`` on task instances and task keys: a fingerprint of a mapped index's input; keys
  written under one are never handed to a task instance with another.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_instance_history",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("dag_run_id", sa.Integer, sa.ForeignKey("dag_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=False),
        sa.Column("try_number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("start_date", UTCDateTime(), nullable=True),
        sa.Column("end_date", UTCDateTime(), nullable=True),
        sa.Column("map_key", sa.String(250), nullable=True),
        **mysql_table_options(),
    )
    op.create_index("task_instance_history_ti_idx", "task_instance_history",
                    ["dag_run_id", "task_id", "map_index", "try_number"])
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("map_key", sa.String(250), nullable=True))
    with op.batch_alter_table("task_state") as batch:
        batch.add_column(sa.Column("map_key", sa.String(250), nullable=True))
        batch.add_column(sa.Column("written_by_try", sa.Integer, nullable=True))
        batch.add_column(sa.Column("parked_from", sa.Integer, nullable=True))
    with op.batch_alter_table("key_change") as batch:
        batch.add_column(sa.Column("try_number", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("key_change") as batch:
        batch.drop_column("try_number")
    with op.batch_alter_table("task_state") as batch:
        batch.drop_column("parked_from")
        batch.drop_column("written_by_try")
        batch.drop_column("map_key")
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("map_key")
    op.drop_table("task_instance_history")
