"""Running an execution: record it, add its partition, run it here or hand it to the run queue.

Every run is described by a `RunPlan`: which execution, which stages (all of them, or a replay's
or a resume's subset), with which config. What the run is (a first run, a replay, a resume) the
asset decides when it begins, from the execution and the run's Dagster tags, exactly as for a run
launched from the Dagster UI (`assets/run_kinds.py`): a resume carries Dagster's own re-execution tags.
In process (the default) the run executes in the calling process, all its stages streaming in one
step (architecture §2a), from the definitions of that one pipeline only; its run id is chosen
beforehand and claimed in the runners table, so a process killed even before Dagster recorded the
run is seen as gone. Detached, the run is submitted to the instance's queue and the daemon
(`dagster dev`, `factflow ui`) launches it from the workspace's code location.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord
from resources.outage import waiting_longer

from ..assets import dagster_private, tags
from ..assets.dataset_asset import dataset_asset_key
from ..assets.location import definitions_of
from ..assets.pipeline_asset import stage_asset_key
from ..assets.runs import RUN_STATUS, run_failure, was_interrupted
from ..config import StageRef, load_pipeline
from ..dataset.build import dataset_stages
from ..engine.executions import check_init_payload, create_execution, frozen_pipeline
from ..engine.incremental import baseline_for
from ..settings import Settings
from .instance import workspace_file

#: Dagster's console logger would print every event of the run, and a failed or cancelled step
#: with its stack trace. The CLI shows its own progress and summary (the first step failure as
#: the execution's error, failed messages in lineage); the full log stays in Dagster's event log.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class StartRequest:
    pipeline: str
    overrides: dict[str, Any]
    tag: str | None = None
    since: str | None = None  # an execution id or tag, or "latest": an incremental execution


@dataclass(frozen=True)
class RunPlan:
    """One Dagster run over an execution's partition."""

    record: ExecutionRecord
    kind: str  # start | replay | resume
    config_hash: str
    stages: tuple[StageRef, ...] | None = None  # None: every stage of the pipeline
    extra_tags: dict[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None  # a resume: the run it continues
    root_run_id: str | None = None

    @classmethod
    def start(cls, record: ExecutionRecord) -> RunPlan:
        return cls(record, "start", record.config_hash)

    @classmethod
    def resume(cls, record: ExecutionRecord, config_hash: str, stages: tuple[StageRef, ...], parent_run_id: str | None, root_run_id: str | None) -> RunPlan:
        """A resume is what Dagster's "re-execute from failure" makes: its re-execution tags."""
        extra = {tags.RESUME_RETRY: "true"}
        if parent_run_id:
            extra.update({tags.PARENT_RUN: parent_run_id, tags.ROOT_RUN: root_run_id or parent_run_id, tags.RESUMED_RUN: parent_run_id})
        return cls(record, "resume", config_hash, stages, extra, parent_run_id, root_run_id or parent_run_id)

    def tags(self) -> dict[str, str]:
        return {**tags.run_tags(self.record.id, self.record.pipeline, self.config_hash, self.kind), **self.extra_tags}

    def asset_keys(self) -> list | None:
        if self.stages is None:
            return None
        return [stage_asset_key(self.record.pipeline, ref) for ref in self.stages]


def prepare_execution(
    settings: Settings,
    db: FactflowDatabase,
    instance: DagsterInstance,
    request: StartRequest,
    note: Callable[[str], None] = lambda _: None,
    runs_here: bool = False,
) -> ExecutionRecord:
    """Validate the pipeline, record the execution with its frozen config, add its partition.
    With `since` (or `incremental:` in the YAML) its baseline is found first; `note` hears when
    `latest` finds none (a full crawl). `runs_here`: this process will run it, and says so at
    once (the runner row), so that if it dies before its run even exists the execution reads
    `interrupted`, not `queued` for ever."""
    pipeline = load_pipeline(settings.pipelines_dir, request.pipeline)
    origin = {"kind": "start"}
    since = request.since or pipeline.spec.incremental
    if since:
        check_init_payload(pipeline, request.overrides)
        baseline = baseline_for(db, pipeline.name, pipeline.init_payload(request.overrides), since)
        if baseline is None:
            note(f"no completed execution of {pipeline.name} with this init payload yet: a full crawl")
        else:
            origin["since"] = baseline.id
    record = create_execution(db, pipeline, overrides=request.overrides, tag=request.tag, status="queued", origin=origin)
    if runs_here:
        db.runners.beat(record.id, None)
    instance.add_dynamic_partitions(pipeline.name, [record.id])
    return record


def run_in_process(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, plan: RunPlan) -> ExecutionRecord:
    """Materialise the plan's stages in this process; return the finished record. From the run's
    creation to its record's last word, a database outage is waited out as a run waits it out."""
    with waiting_longer(settings.database_outage_seconds):
        return _run_in_process(settings, db, instance, plan)


def _run_in_process(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, plan: RunPlan) -> ExecutionRecord:
    record = plan.record
    pipeline = frozen_pipeline(db, plan.config_hash, record.pipeline)
    job = definitions_of([pipeline], settings).resolve_job_def(record.pipeline)
    if not instance.has_dynamic_partition(pipeline.name, record.id):  # removed in the UI since: the run needs it
        instance.add_dynamic_partitions(pipeline.name, [record.id])
    run_id = str(uuid.uuid4())  # what Dagster's own run ids are
    db.runners.beat(record.id, run_id)
    db.executions.set_status(record.id, "running", run_id=run_id)
    gc.freeze()  # what is imported and built by now lives as long as the process: no collection walks it again
    try:
        selection = plan.asset_keys()
        if selection is not None and dataset_stages(pipeline) is not None:
            selection.append(dataset_asset_key(pipeline.name))  # what the run changes, the dataset shows
        run = dagster_private.execute_here(
            job, instance, run_id=run_id, tags=plan.tags(), asset_selection=selection, run_config=QUIET_RUN_CONFIG,
            working_directory=settings.home, parent_run_id=plan.parent_run_id, root_run_id=plan.root_run_id,
        )
    except KeyboardInterrupt:
        _interrupted(db, record.id, run_id)
        raise
    status = RUN_STATUS.get(run.status, "failed")
    if status == "failed" and was_interrupted(instance, run_id):  # Dagster turned the Ctrl+C into a failed step
        _interrupted(db, record.id, run_id)
        raise KeyboardInterrupt
    error: str | None
    if status == "cancelled":
        error = "cancelled by the operator; resume it with: factflow execution resume " + record.id
    else:
        error = run_failure(instance, run_id) if status == "failed" else None
    db.executions.set_status(record.id, status, run_id=run_id, error=error)
    return db.executions.resolve(record.id)


def _interrupted(db: FactflowDatabase, execution_id: str, run_id: str) -> None:
    reason = "interrupted by the operator (Ctrl+C)"
    db.lineage.close_interrupted(execution_id, run_id, reason)
    db.executions.set_status(execution_id, "interrupted", error=f"{reason}; resume it with: factflow execution resume {execution_id}")


def submit_to_queue(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord) -> ExecutionRecord:
    """Put the execution's first run (every stage) in the instance's run queue; the daemon launches it."""
    run = dagster_private.submit_to_queue(instance, workspace_file(settings), record.pipeline, RunPlan.start(record).tags())
    db.executions.set_status(record.id, "queued", run_id=run.run_id)
    return db.executions.resolve(record.id)
