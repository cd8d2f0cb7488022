"""Creating executions, loading the config an execution froze, and reading where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord

from ..config import Pipeline, require_valid, validate_text
from ..ids import new_execution_id

#: The width of the executions table's tag column.
MAX_TAG_LENGTH = 128


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
    init_payload: dict[str, Any] | None = None,
) -> ExecutionRecord:
    """Record a new execution with a frozen copy of `pipeline`'s config. Its init payload is the
    YAML's with `overrides`, unless given whole (a replay's child runs on its parent's). A payload
    the first stage cannot start from is refused before anything is recorded."""
    overrides = overrides or {}
    if tag is not None and not 0 < len(tag) <= MAX_TAG_LENGTH:
        raise FactflowError(f"a tag has 1 to {MAX_TAG_LENGTH} characters; this one has {len(tag)}")
    if init_payload is None:
        check_init_payload(pipeline, overrides)
    db.executions.save_config(pipeline.name, pipeline.config_hash, pipeline.text)
    record = ExecutionRecord(
        id=execution_id or new_execution_id(),
        pipeline=pipeline.name,
        tag=tag,
        status=status,
        config_hash=pipeline.config_hash,
        init_route=pipeline.init_route,
        init_payload=init_payload if init_payload is not None else pipeline.init_payload(overrides),
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


def check_init_payload(pipeline: Pipeline, overrides: dict[str, Any]) -> None:
    """FactflowError (one line) when an override names a field the first stage does not read, or
    the payload is not what it can start from (an URL that is not http(s), a list that is none)."""
    first = pipeline.first_stage(pipeline.init_route)
    reads = first.adapter_class.reads_init_fields
    unknown = [key for key in overrides if reads and key not in reads]
    if unknown:
        raise FactflowError(
            f"--set {unknown[0]}: {first.ref} ({first.adapter_type}) reads only {', '.join(reads)} from the init payload; nothing was recorded"
        )
    problems = first.adapter_class.init_payload_problems(first.adapter_config, pipeline.init_payload(overrides))
    if problems:
        raise FactflowError(f"the init payload cannot start {first.ref}: {problems[0]}; nothing was recorded")


@lru_cache(maxsize=32)
def _parse_frozen(name: str, text: str) -> Pipeline:
    return require_valid(validate_text(text, pipeline_name=name, source=f"frozen config of {name}"))


def frozen_pipeline(db: FactflowDatabase, config_hash: str, name: str | None = None) -> Pipeline:
    """The pipeline exactly as an execution (or a replay) froze it, named `name` (the execution's
    pipeline): the same YAML copied under another file name has the same hash, and the first name
    it was frozen under is not the one this execution runs as."""
    frozen_name, text = db.executions.config(config_hash)
    return _parse_frozen(name or frozen_name, text)


@dataclass(frozen=True)
class ReplaySource:
    """Where a child execution made by `replay --to-route` takes its first route's input from."""

    parent_id: str
    from_route: str
    from_stage: str
    to_route: str

    def origin(self) -> dict[str, Any]:
        return {"kind": "replay", "parent": self.parent_id, "from_stage": f"{self.from_route}/{self.from_stage}", "to_route": self.to_route}


def replay_source(record: ExecutionRecord) -> ReplaySource | None:
    origin = record.origin or {}
    if origin.get("kind") != "replay" or not record.parent_id:
        return None
    route, _, stage = origin["from_stage"].partition("/")
    return ReplaySource(record.parent_id, route, stage, origin["to_route"])
