"""Per stage, how its lineage rows stand: read from the factflow database alone, so `pipeline list`
and the live progress table need nothing of Dagster for an execution that is not running."""

from __future__ import annotations

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord

from ..config import Pipeline
from ..engine.executions import frozen_pipeline


def stage_progress(db: FactflowDatabase, record: ExecutionRecord, pipeline: Pipeline | None = None) -> list[dict]:
    """Per stage, in run order: lineage rows by status (done, unchanged, failed, skipped, in flight)."""
    pipeline = pipeline or frozen_pipeline(db, record.config_hash, record.pipeline)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in db.lineage.stage_counts(record.id):
        counts.setdefault((row["route"], row["stage"]), {})[row["status"]] = row["count"]
    rows = []
    for stage in pipeline.stages:
        by_status = counts.get((stage.route.name, stage.name), {})
        rows.append(
            {
                "route": stage.route.name,
                "stage": stage.name,
                "adapter": stage.adapter_type,
                "completed": by_status.get("completed", 0),
                "unchanged": by_status.get("unchanged", 0),  # carried over from the baseline: done, no work redone
                "failed": by_status.get("failed", 0),
                "skipped": by_status.get("skipped", 0),
                "in_flight": by_status.get("pending", 0),
            }
        )
    return rows
