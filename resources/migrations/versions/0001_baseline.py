"""Baseline: the schema as it was before migrations were versioned.

Databases made by factflow before Alembic were created with `create_all` and later given missing
nullable columns on first use; this revision adopts them: it creates whatever table, column or
index is missing, and changes nothing that is there. A new database gets the whole schema.
The tables are written out as they were at this revision (not read from `db_schema`, which moves
on with later revisions).

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()
ID = String(40)
NAME = String(64)
HASH = String(64)

configs = Table(
    "factflow_configs",
    metadata,
    Column("config_hash", HASH, primary_key=True),
    Column("pipeline", NAME, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

executions = Table(
    "factflow_executions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pipeline", NAME, nullable=False),
    Column("tag", String(128), unique=True),
    Column("status", String(16), nullable=False),
    Column("config_hash", HASH, nullable=False),
    Column("init_route", NAME, nullable=False),
    Column("init_payload", JSON, nullable=False),
    Column("overrides", JSON, nullable=False),
    Column("parent_id", ID),
    # {"kind": "start" | "dagster_ui"} or, for a child made by a replay into a route,
    # {"kind": "replay", "parent": ..., "from_stage": "route/stage", "to_route": ...}
    Column("origin", JSON, nullable=False),
    Column("dagster_run_id", String(64)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_factflow_executions_status", "status"),
    Index("ix_factflow_executions_parent", "parent_id"),
    Index("ix_factflow_executions_pipeline_created", "pipeline", "created_at"),
)

lineage = Table(
    "factflow_lineage",
    metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, nullable=False),
    Column("route", NAME, nullable=False),
    Column("stage", NAME, nullable=False),
    Column("adapter_type", NAME, nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("parent_lineage_id", ID),
    Column("batch_id", ID, nullable=False),
    Column("status", String(16), nullable=False),
    Column("input_hash", HASH),
    Column("output_hash", HASH),
    Column("output_keys", JSON, nullable=False),
    # How many objects the invocation wrote and their bytes, so metrics need no storage scan
    # (null on rows written before these columns existed).
    Column("output_count", Integer),
    Column("output_bytes", BigInteger),
    Column("error_class", String(200)),
    Column("error_message", Text),
    Column("error_traceback", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_ms", Float),
    Column("dagster_run_id", String(64)),
    Column("attempt", Integer, nullable=False),
    Column("config_hash", HASH, nullable=False),
    Column("superseded", Boolean, nullable=False, default=False),
    Column("metadata", JSON, nullable=False),
    Index("ix_factflow_lineage_exec_stage", "execution_id", "route", "stage", "status"),
    # (execution, status) lookups, and one execution's failures in time order without a sort
    Index("ix_factflow_lineage_exec_status_started", "execution_id", "status", "started_at"),
    Index("ix_factflow_lineage_status_started", "status", "started_at"),
    Index("ix_factflow_lineage_parent", "parent_lineage_id"),
    Index("ix_factflow_lineage_batch", "batch_id"),
    Index("ix_factflow_lineage_message", "message_id"),
)

route_state = Table(
    "factflow_route_state",
    metadata,
    Column("route", NAME, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

replays = Table(
    "factflow_replays",
    metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, nullable=False),  # the execution replayed from
    Column("from_route", NAME, nullable=False),
    Column("from_stage", NAME, nullable=False),
    Column("to_route", NAME),  # set for a replay into a child execution
    Column("target_execution_id", ID, nullable=False),  # the execution itself, or the child
    Column("previous_config_hash", HASH, nullable=False),
    Column("config_hash", HASH, nullable=False),
    Column("superseded_rows", Integer, nullable=False),
    Column("deleted_objects", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_factflow_replays_execution", "execution_id", "created_at"),
    Index("ix_factflow_replays_target", "target_execution_id"),
)

runners = Table(
    "factflow_runners",
    metadata,
    Column("execution_id", ID, primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("dagster_run_id", String(64)),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

stage_progress = Table(
    "factflow_stage_progress",
    metadata,
    Column("execution_id", ID, primary_key=True),
    Column("route", NAME, primary_key=True),
    Column("stage", NAME, primary_key=True),
    Column("dagster_run_id", String(64)),
    Column("inputs", Integer, nullable=False),
    Column("taken", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, checkfirst=True)
    inspector = sa.inspect(bind)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:  # added to a table before migrations existed: nullable
                op.add_column(table.name, Column(column.name, column.type, nullable=True))
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    for table in reversed(metadata.sorted_tables):
        op.drop_table(table.name)
