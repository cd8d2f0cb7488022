"""Resume: finish an execution whose run died, was cancelled or failed (DESIGN §5, recovery).

The new run selects what the last run was asked to do minus the stages it materialised, with the
config that run used. Inside a stage the skip rule (DESIGN §2.5) passes over every message whose
output is stored and whose lineage row completed, so nothing is fetched or written twice; the
rows the dead run left pending were closed as its interrupted attempt.
"""

from __future__ import annotations

from dagster import AssetKey, DagsterEventType, DagsterInstance

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord

from ..config import Pipeline, StageRef, load_pipeline
from ..errors import FactflowError
from ..settings import Settings
from . import tags
from .executions import frozen_pipeline, replay_source
from .launch import RunPlan
from .status import execution_runs, refresh_status


def plan_resume(settings: Settings, db: FactflowDatabase, instance: DagsterInstance, execution: str) -> RunPlan:
    record = refresh_status(db, instance, db.executions.resolve(execution))
    if record.active:
        raise FactflowError(f"execution {record.id} is {record.status}; only an execution that stopped can be resumed")
    if record.status == "completed":
        raise FactflowError(
            f"execution {record.id} completed: nothing to resume (to run stages again: factflow execution replay {record.id} --from-stage STAGE)"
        )
    runs = execution_runs(instance, record.id, limit=1)
    last = runs[0].dagster_run if runs else None
    config_hash = last.tags.get(tags.CONFIG_HASH, record.config_hash) if last else record.config_hash
    pipeline = frozen_pipeline(db, config_hash)
    if last is None or not last.asset_selection:
        selected = [stage.ref for stage in execution_stages(pipeline, record)]
    else:
        selected = [ref for ref in (_ref(key) for key in last.asset_selection) if ref is not None]
    done = _materialized(instance, last.run_id) if last else set()
    order = {stage.ref: index for index, stage in enumerate(pipeline.stages)}
    remaining = sorted((ref for ref in selected if ref not in done), key=lambda ref: order.get(ref, len(order)))
    if not remaining:
        raise FactflowError(f"execution {record.id}: its last run materialised every stage it selected; nothing to resume")
    _require_still_defined(settings, record, remaining)
    extra = {tags.RESUMED_RUN: last.run_id} if last else {}
    return RunPlan(record, "resume", config_hash, tuple(remaining), extra)


def execution_stages(pipeline: Pipeline, record: ExecutionRecord) -> list:
    """The stages an execution runs: all of them, or for a child made by a replay into a route,
    that route and what it feeds."""
    source = replay_source(record)
    if source is None:
        return pipeline.stages
    return pipeline.downstream_of(pipeline.first_stage(source.to_route).ref)


def _ref(key: AssetKey) -> StageRef | None:
    return StageRef(key.path[1], key.path[2]) if len(key.path) == 3 else None


def _materialized(instance: DagsterInstance, run_id: str) -> set[StageRef]:
    events = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    return {ref for ref in (_ref(e.event_log_entry.dagster_event.asset_key) for e in events) if ref is not None}


def _require_still_defined(settings: Settings, record: ExecutionRecord, remaining: list[StageRef]) -> None:
    """The run executes the assets the pipelines directory defines now: they must still exist."""
    current = {stage.ref for stage in load_pipeline(settings.pipelines_dir, record.pipeline).stages}
    gone = [str(ref) for ref in remaining if ref not in current]
    if gone:
        raise FactflowError(
            f"execution {record.id} cannot be resumed: stage(s) {', '.join(gone)} are no longer in pipeline {record.pipeline!r}; "
            "replay from a stage that exists instead"
        )
