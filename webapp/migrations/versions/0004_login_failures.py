"""Failed logins, for throttling password guessing across every process.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        **mysql_table_options(),
    )
    op.create_index("login_failure_user_idx", "login_failure", ["username", "failed_at"])
    op.create_index("login_failure_addr_idx", "login_failure", ["remote_addr", "failed_at"])


def downgrade() -> None:
    op.drop_table("login_failure")
