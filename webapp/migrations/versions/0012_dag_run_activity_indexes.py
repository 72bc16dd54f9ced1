"""Indexes for the DAG list's last activity: the latest time each DAG's runs were created,
started and finished, each read as the last entry of a (dag_id, time) index instead of from
every run of the DAG.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = {
    "dag_run_dag_id_created_at_idx": ["dag_id", "created_at"],
    "dag_run_dag_id_start_date_idx": ["dag_id", "start_date"],
    "dag_run_dag_id_end_date_idx": ["dag_id", "end_date"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "dag_run", columns)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite plans with the statistics ANALYZE left, which know nothing of a new index and
        # guess it selects about ten rows: with a million runs it then took the new indexes
        # for a DAG's runs page and sorted all of its runs (33 ms to 400 ms). PostgreSQL and
        # MariaDB estimate from column statistics, which a new index does not change.
        op.execute("ANALYZE dag_run")


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="dag_run")
