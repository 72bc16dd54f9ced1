"""Users of the admin UI, and an index that keeps the UI's run listing fast.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("username", name="app_user_username_uq"),
        **mysql_table_options(),
    )
    # The runs page lists one DAG's runs newest first (keyset paging on id): with this index
    # that is a short index range scan even with 100,000 runs, instead of a sort.
    op.create_index("dag_run_dag_id_id_idx", "dag_run", ["dag_id", "id"])


def downgrade() -> None:
    op.drop_index("dag_run_dag_id_id_idx", table_name="dag_run")
    op.drop_table("app_user")
