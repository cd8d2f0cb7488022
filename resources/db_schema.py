"""The factflow database schema (SQLAlchemy Core), the same on SQLite and PostgreSQL: what the
queries read and write, at the newest migration (`resources/migrations`, which makes it).

- `factflow_configs`: every pipeline YAML an execution ran with, by its SHA-256 (the config hash).
- `factflow_executions`: one row per execution, with its frozen config hash and replay origin.
- `factflow_lineage`: one row per message per adapter invocation (architecture §4).
- `factflow_route_state`: paused or running, per route id (architecture §6).
- `factflow_stage_progress`: per stage of a running execution, how many input messages it listed
  and how many it has taken, so `pipeline list` can say what is still waiting.
- `factflow_replays`: every replay of an execution: from which stage, into which execution, with
  which config, and what it superseded.
- `factflow_runners`: the process running an execution's current run and its last heartbeat, so
  a run whose process died reads as interrupted rather than running forever.
- `factflow_deliveries`: each webhook notification of an execution, with its attempts and outcome.
- `factflow_frontier`: the URLs a link-following stage of an execution was given or found, in the
  order it takes them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
    Column("config_hash", HASH, ForeignKey("factflow_configs.config_hash", name="fk_factflow_executions_config"), nullable=False),
    Column("init_route", NAME, nullable=False),
    Column("init_payload", JSON, nullable=False),
    Column("overrides", JSON, nullable=False),
    Column("parent_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_executions_parent")),
    # {"kind": "start" | "dagster_ui"} or, for a child made by a replay into a route,
    # {"kind": "replay", "parent": ..., "from_stage": "route/stage", "to_route": ...}
    Column("origin", JSON, nullable=False),
    Column("dagster_run_id", String(64)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),  # the last end: a replay or a resume moves it
    Column("first_finished_at", DateTime(timezone=True)),  # the first run's end: the execution's duration
    Index("ix_factflow_executions_status", "status"),
    Index("ix_factflow_executions_parent", "parent_id"),
    Index("ix_factflow_executions_pipeline_created", "pipeline", "created_at"),
)

lineage = Table(
    "factflow_lineage",
    metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_lineage_execution"), nullable=False),
    Column("route", NAME, nullable=False),
    Column("stage", NAME, nullable=False),
    Column("adapter_type", NAME, nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("parent_lineage_id", ID, ForeignKey("factflow_lineage.id", name="fk_factflow_lineage_parent")),
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
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_replays_execution"), nullable=False),  # replayed from
    Column("from_route", NAME, nullable=False),
    Column("from_stage", NAME, nullable=False),
    Column("to_route", NAME),  # set for a replay into a child execution
    Column("target_execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_replays_target"), nullable=False),  # itself, or the child
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
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_runners_execution"), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("dagster_run_id", String(64)),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

stage_progress = Table(
    "factflow_stage_progress",
    metadata,
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_stage_progress_execution"), primary_key=True),
    Column("route", NAME, primary_key=True),
    Column("stage", NAME, primary_key=True),
    Column("dagster_run_id", String(64)),
    Column("inputs", Integer, nullable=False),
    Column("taken", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "factflow_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_deliveries_execution"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed, refused
    Column("attempts", Integer, nullable=False),
    Column("response_status", Integer),
    Column("error", Text),
    Column("signed", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_factflow_deliveries_execution", "execution_id", "created_at"),
)

frontier = Table(
    "factflow_frontier",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", ID, ForeignKey("factflow_executions.id", name="fk_factflow_frontier_execution"), nullable=False),
    Column("route", NAME, nullable=False),
    Column("stage", NAME, nullable=False),
    Column("key", HASH, nullable=False),  # urls.page_key: one row per page however it was spelled
    Column("url", Text, nullable=False),
    Column("depth", Integer, nullable=False),
    Column("scope", Text, nullable=False),
    # no foreign key: the lineage row that found the URL is written after it (the writer batches)
    Column("parent_lineage_id", ID),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("execution_id", "route", "stage", "key", name="uq_factflow_frontier_key"),
    Index("ix_factflow_frontier_order", "execution_id", "route", "stage", "seq"),
)
