"""Creating executions and loading the config an execution froze."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord

from ..config import Pipeline, require_valid, validate_text
from ..ids import new_execution_id


def create_execution(
    db: FactflowDatabase,
    pipeline: Pipeline,
    *,
    overrides: dict[str, Any] | None = None,
    tag: str | None = None,
    status: str = "queued",
    execution_id: str | None = None,
    parent_id: str | None = None,
    origin: dict[str, Any] | None = None,
) -> ExecutionRecord:
    """Record a new execution with a frozen copy of `pipeline`'s config."""
    overrides = overrides or {}
    db.executions.save_config(pipeline.name, pipeline.config_hash, pipeline.text)
    record = ExecutionRecord(
        id=execution_id or new_execution_id(),
        pipeline=pipeline.name,
        tag=tag,
        status=status,
        config_hash=pipeline.config_hash,
        init_route=pipeline.init_route,
        init_payload=pipeline.init_payload(overrides),
        overrides=overrides,
        parent_id=parent_id,
        origin=origin or {"kind": "start"},
        dagster_run_id=None,
        error=None,
        created_at=utcnow(),
        started_at=None,
        finished_at=None,
    )
    return db.executions.create(record)


@lru_cache(maxsize=32)
def _parse_frozen(name: str, text: str) -> Pipeline:
    return require_valid(validate_text(text, pipeline_name=name, source=f"frozen config of {name}"))


def frozen_pipeline(db: FactflowDatabase, config_hash: str) -> Pipeline:
    """The pipeline exactly as an execution (or a replay) froze it."""
    name, text = db.executions.config(config_hash)
    return _parse_frozen(name, text)
