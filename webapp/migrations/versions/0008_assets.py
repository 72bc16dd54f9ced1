"""Assets and their keys: the second kind of scope.

- ``asset``: name, URI (each unique, by SHA-256) and group.
- ``asset_state``: an asset's keys, with who last wrote each (a task instance, a watcher, a
  person or API key). Never expire. Key search gets the same index as task keys (a trigram
  GIN index on PostgreSQL, an FTS5 trigram table kept by triggers on SQLite).
- ``task_asset``: the assets a run's tasks declared as inlets and outlets.
- ``key_change`` records changes to either kind: ``scope_kind``, and the asset's id and name
  beside the task instance's columns (now nullable).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import importlib

import sqlalchemy as sa
from alembic import op

from webapp.migrations.table_options import mysql_table_options
from webapp.models import AutoIncrementBigInteger, LongText, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NAME = 1500
search_indexes = importlib.import_module("webapp.migrations.versions.0006_key_search_indexes")


def upgrade() -> None:
    op.create_table(
        "asset",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("uri", sa.String(NAME), nullable=False),
        sa.Column("group_name", sa.String(NAME), nullable=False),
        sa.Column("name_hash", sa.String(64), nullable=False),
        sa.Column("uri_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name_hash", name="asset_name_hash_uq"),
        sa.UniqueConstraint("uri_hash", name="asset_uri_hash_uq"),
        **mysql_table_options(),
    )
    op.create_table(
        "asset_state",
        sa.Column("id", AutoIncrementBigInteger, primary_key=True),
        sa.Column("asset_id", sa.Integer, sa.ForeignKey("asset.id", ondelete="CASCADE"), nullable=False),
        sa.Column("asset_name", sa.String(NAME), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("written_by_kind", sa.String(16), nullable=True),
        sa.Column("written_by_dag_id", sa.String(250), nullable=True),
        sa.Column("written_by_run_id", sa.String(250), nullable=True),
        sa.Column("written_by_task_id", sa.String(250), nullable=True),
        sa.Column("written_by_map_index", sa.Integer, nullable=True),
        sa.Column("written_by_name", sa.String(150), nullable=True),
        sa.UniqueConstraint("asset_id", "key", name="asset_state_asset_key_uq"),
        sqlite_autoincrement=True,
        **mysql_table_options(),
    )
    op.create_index("asset_state_writer_idx", "asset_state",
                    ["written_by_dag_id", "written_by_run_id", "written_by_task_id", "written_by_map_index"])
    op.create_table(
        "task_asset",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dag_run_id", sa.Integer, sa.ForeignKey("dag_run.id", ondelete="CASCADE"), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("asset_name_hash", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(6), nullable=False),
        sa.UniqueConstraint("dag_run_id", "task_id", "asset_name_hash", "direction", name="task_asset_uq"),
        **mysql_table_options(),
    )
    with op.batch_alter_table("key_change") as batch:
        batch.add_column(sa.Column("scope_kind", sa.String(10), nullable=False, server_default="task"))
        batch.add_column(sa.Column("asset_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("asset_name", sa.String(NAME), nullable=True))
        for column, kind in (("dag_id", sa.String(250)), ("run_id", sa.String(250)), ("task_id", sa.String(250)),
                             ("map_index", sa.Integer())):
            batch.alter_column(column, existing_type=kind, nullable=True)
    op.create_index("key_change_asset_idx", "key_change", ["asset_id", "changed_at"])
    search_indexes.create_key_search_index("asset_state")


def downgrade() -> None:
    search_indexes.drop_key_search_index("asset_state")
    op.drop_index("key_change_asset_idx", table_name="key_change")
    op.execute("DELETE FROM key_change WHERE scope_kind <> 'task'")
    with op.batch_alter_table("key_change") as batch:
        for column, kind in (("dag_id", sa.String(250)), ("run_id", sa.String(250)), ("task_id", sa.String(250)),
                             ("map_index", sa.Integer())):
            batch.alter_column(column, existing_type=kind, nullable=False)
        batch.drop_column("asset_name")
        batch.drop_column("asset_id")
        batch.drop_column("scope_kind")
    op.drop_table("task_asset")
    op.drop_index("asset_state_writer_idx", table_name="asset_state")
    op.drop_table("asset_state")
    op.drop_table("asset")
