"""An index for counting a DAG's live keys and the task instances holding them (DAG list).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "task_state_dag_idx", "task_state", ["dag_id", "dag_run_id", "task_id", "map_index", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("task_state_dag_idx", table_name="task_state")
