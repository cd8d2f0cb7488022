"""A pipeline's `schedule:` as a Dagster schedule: each tick starts a new execution.

The tick records the execution (frozen config, origin `schedule`), adds its partition and asks
for one run of every stage, which the daemon launches like a detached start. A tick evaluated
twice (the daemon retries after a crash) finds the execution it made the first time by its tag,
`<pipeline>@<tick time>`, and Dagster drops the second run request by its run key.
"""

# No `from __future__ import annotations`: Dagster reads the schedule function's annotations.
from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from resources.dagster_resources import FactflowDatabaseResource

from ..config import Pipeline
from ..engine.executions import create_execution
from ..engine.incremental import baseline_for
from . import tags


def schedule_name(pipeline: Pipeline) -> str:
    return f"{pipeline.name}_schedule"


def build_schedule(pipeline: Pipeline, job) -> ScheduleDefinition | None:
    spec = pipeline.spec.schedule
    if spec is None:
        return None

    @schedule(
        name=schedule_name(pipeline),
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        job=job,
        # Written in the YAML means meant to run: it ticks whenever the daemon runs (`factflow ui`);
        # the UI can still stop it.
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Starts a new execution of {pipeline.name} at {spec.cron} ({spec.timezone}).",
    )
    def start_execution(context: ScheduleEvaluationContext, database: FactflowDatabaseResource) -> RunRequest:
        db = database.open()
        tick = context.scheduled_execution_time.isoformat(timespec="minutes")
        tag = f"{pipeline.name}@{tick}"
        record = db.executions.find_by_tag(tag)
        if record is None:
            origin = {"kind": "schedule", "schedule": schedule_name(pipeline), "tick": tick}
            baseline = baseline_for(db, pipeline.name, pipeline.init_payload(), pipeline.spec.incremental) if pipeline.spec.incremental else None
            if baseline is not None:
                origin["since"] = baseline.id
            record = create_execution(db, pipeline, tag=tag, status="queued", origin=origin)
        context.instance.add_dynamic_partitions(pipeline.name, [record.id])
        return RunRequest(
            run_key=record.id,
            partition_key=record.id,
            tags=tags.run_tags(record.id, pipeline.name, record.config_hash, "schedule"),
        )

    return start_execution
