"""Starting an execution: record it, add its partition, run it here or hand it to the run queue.

In process (the default) the run executes in the calling process, one stage after another, with
the in-process executor (DESIGN §2a). Detached, the run is submitted to the instance's queue and
the daemon (`dagster dev`, `factflow ui`) launches it from the workspace's code location.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord

from ..config import load_pipeline
from ..definitions import build_definitions
from ..settings import PROJECT_ROOT, Settings
from . import tags
from .executions import create_execution

WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"

#: Dagster's console logger would print every event of the run; the CLI shows its own progress
#: and summary (failed messages are in lineage), so only errors of the run itself get through.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class StartRequest:
    pipeline: str
    overrides: dict[str, Any]
    tag: str | None = None


def run_tags(record: ExecutionRecord, kind: str) -> dict[str, str]:
    return {
        tags.EXECUTION_ID: record.id,
        tags.PIPELINE: record.pipeline,
        tags.CONFIG_HASH: record.config_hash,
        tags.RUN_KIND: kind,
        "dagster/partition": record.id,
    }


def prepare_execution(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, request: StartRequest) -> ExecutionRecord:
    """Validate the pipeline, record the execution with its frozen config, add its partition."""
    pipeline = load_pipeline(settings.pipelines_dir, request.pipeline)
    record = create_execution(db, pipeline, overrides=request.overrides, tag=request.tag, status="queued")
    instance.add_dynamic_partitions(pipeline.name, [record.id])
    return record


def run_in_process(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord, kind: str = "start") -> ExecutionRecord:
    """Materialise every stage of the execution in this process; return the finished record."""
    job = build_definitions(settings).resolve_job_def(record.pipeline)
    db.executions.set_status(record.id, "running")
    try:
        result = job.execute_in_process(
            instance=instance,
            partition_key=record.id,
            tags=run_tags(record, kind),
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
    except KeyboardInterrupt:
        db.executions.set_status(record.id, "interrupted", error="interrupted by the operator (Ctrl+C)")
        raise
    error = None if result.success else _first_failure(result)
    db.executions.set_status(record.id, "completed" if result.success else "failed", run_id=result.run_id, error=error)
    return db.executions.get(record.id)


def _first_failure(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
    return "the Dagster run failed"


def submit_to_queue(db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord, kind: str = "start") -> ExecutionRecord:
    """Put the execution's run in the instance's run queue; the daemon launches it."""
    from dagster._cli.job import execute_launch_command
    from dagster_shared.cli import WorkspaceOpts

    run = execute_launch_command(
        instance=instance,
        workspace_opts=WorkspaceOpts(workspace=[str(WORKSPACE_FILE)]),
        job_name=record.pipeline,
        tags=json.dumps(run_tags(record, kind)),
    )
    db.executions.set_status(record.id, "queued", run_id=run.run_id)
    return db.executions.get(record.id)
