"""Resume: finish an execution whose run died, was cancelled or failed, or try its failed messages
again (architecture §5, recovery).

The new run selects what the last run was asked to do minus the stages it materialised, and the
stages with failed messages (plus what those feed), with the config that run used, and carries Dagster's re-execution tags, so it is the
same operation as the UI's "Re-execute from failure". Inside a stage the skip rule (architecture §2.5)
passes over every message whose output is stored and whose lineage row completed, so nothing is
fetched or written twice; the rows the dead run left pending were closed as its interrupted
attempt.
"""

from __future__ import annotations

from dagster import AssetKey, DagsterEventType, DagsterInstance

from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord
from resources.storage import ObjectStore

from ..assets import tags
from ..assets.runs import execution_runs
from ..config import Pipeline, StageRef
from ..engine.executions import frozen_pipeline, replay_source
from ..engine.replay_checks import require_resume_inputs
from .launch import RunPlan
from .status import refresh_status

#: Current lineage statuses of a message a resume takes again.
UNFINISHED = frozenset({"failed", "cancelled", "pending"})


def plan_resume(db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, execution: str) -> RunPlan:
    record = refresh_status(db, instance, db.executions.resolve(execution))
    if record.active:
        raise FactflowError(f"execution {record.id} is {record.status}; only an execution that stopped can be resumed")
    runs = execution_runs(instance, record.id, limit=1, stages_only=True)
    last = runs[0].dagster_run if runs else None
    config_hash = last.tags.get(tags.CONFIG_HASH, record.config_hash) if last else record.config_hash
    pipeline = frozen_pipeline(db, config_hash, record.pipeline)
    if last is None or not last.asset_selection:
        selected = [stage.ref for stage in execution_stages(pipeline, record)]
    else:
        selected = [ref for ref in (_ref(key) for key in last.asset_selection) if ref is not None]
    done = _materialized(instance, last.run_id) if last else set()
    # a stage with a message that failed, or that a dying run left cancelled or pending (its
    # Dagster materialisation may still say the stage was done) runs again
    with_unfinished = {StageRef(row["route"], row["stage"]) for row in db.lineage.stage_counts(record.id) if row["status"] in UNFINISHED}
    unfinished = {ref for ref in selected if ref not in done} | with_unfinished
    # a stage fed by one that runs again runs again too: it must see what that one stores now
    stages = execution_stages(pipeline, record)
    remaining = [stage.ref for stage in stages if any(stage.ref in {s.ref for s in pipeline.downstream_of(ref)} for ref in unfinished)]
    if not remaining:
        raise FactflowError(
            f"execution {record.id} is {record.status} with no failed or unfinished message and every stage done: nothing to resume "
            f"(to run stages again: factflow execution replay {record.id} --from-stage STAGE)"
        )
    require_resume_inputs(db, store, record.id, [stage for stage in pipeline.stages if stage.ref in set(remaining)])
    return RunPlan.resume(record, config_hash, tuple(remaining), last.run_id if last else None, last.root_run_id if last else None)


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
    keys = [e.event_log_entry.dagster_event.asset_key for e in events if e.event_log_entry.dagster_event is not None]
    return {ref for ref in (_ref(key) for key in keys if key is not None) if ref is not None}
