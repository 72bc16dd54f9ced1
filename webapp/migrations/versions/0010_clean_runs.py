"""The last successful run of each kind of ``taskstore clean``, for ``/metrics``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clean_run",
        sa.Column("job", sa.String(40), primary_key=True),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("deleted", sa.BigInteger, nullable=False),
        sa.Column("deleted_total", sa.BigInteger, nullable=False),
        **mysql_table_options(),
    )


def downgrade() -> None:
    op.drop_table("clean_run")
