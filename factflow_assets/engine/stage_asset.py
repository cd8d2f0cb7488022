"""What a stage asset does when Dagster materialises it for one partition (one execution).

Finds the execution and the config its run uses, picks the stage's input (the init message, what
the stage before it stored, or for a replay into a child execution what the parent stored), runs
the stage loop under a heartbeat, and reports a summary as materialisation metadata. Per-message
outcomes go to factflow's lineage, not to Dagster's event log. A cancelled run ends here, after
the messages in flight, as an interrupted step: Dagster then records the run as cancelled.
"""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    DagsterRunStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord
from resources.dagster_resources import HttpClientResource
from resources.storage import ObjectStore, stage_prefix

from ..adapters.network_policy import NetworkPolicy
from ..config import Pipeline, Stage
from ..ids import new_batch_id
from . import tags
from .executions import create_execution, frozen_pipeline, replay_source
from .heartbeat import Heartbeat
from .inputs import InitInput, InputSource, StoredInput
from .stage_checks import stage_check_results
from .stage_runner import StageJob, run_stage


def execution_for_partition(db: FactflowDatabase, pipeline: Pipeline, execution_id: str) -> ExecutionRecord:
    """The execution behind a partition; one added from the Dagster UI is registered here."""
    record = db.executions.get(execution_id)
    if record is None:
        record = create_execution(db, pipeline, execution_id=execution_id, status="running", origin={"kind": "dagster_ui"})
    return record


def input_prefix(stage: Stage, execution: ExecutionRecord) -> tuple[str, str, str] | None:
    """(execution, route, stage) whose stored objects are the stage's input; None for the init message."""
    source = replay_source(execution)
    if source is not None and stage.index == 0 and stage.route.name == source.to_route:
        return source.parent_id, source.from_route, source.from_stage
    if stage.upstream is None:
        return None
    return execution.id, stage.upstream.route, stage.upstream.stage


def stage_input(stage: Stage, execution: ExecutionRecord, store: ObjectStore) -> InputSource:
    where = input_prefix(stage, execution)
    if where is None:
        return InitInput(stage.route.name, execution.init_payload)
    return StoredInput(store, stage_prefix(*where))


def materialize_stage(
    context: AssetExecutionContext,
    pipeline: Pipeline,
    stage_ref,
    store: ObjectStore,
    db: FactflowDatabase,
    http: HttpClientResource,
) -> MaterializeResult:
    execution = execution_for_partition(db, pipeline, context.partition_key)
    config_hash = context.run.tags.get(tags.CONFIG_HASH, execution.config_hash)
    frozen = frozen_pipeline(db, config_hash)
    stage = frozen.stage(stage_ref.route, stage_ref.stage)
    run_id = context.run.run_id
    db.executions.set_status(execution.id, "running", run_id=run_id)

    job = StageJob(execution.id, stage, config_hash, run_id, new_batch_id())
    policy = NetworkPolicy.for_execution(frozen.spec.network, execution.init_payload)

    def http_client():
        return http.client(policy.event_hooks())

    with Heartbeat(db, job, lambda: _cancel_requested(context.instance, run_id)) as heartbeat:
        summary = run_stage(job, stage_input(stage, execution, store), store, db, http_client, heartbeat.control)

    prefix = stage_prefix(execution.id, stage.route.name, stage.name)
    metadata = {
        "messages_in": summary.messages_in,
        "messages_out": summary.messages_out,
        "messages_failed": summary.failed,
        "messages_skipped": summary.skipped,
        "messages_reused": summary.reused,
        "stale_objects_deleted": summary.stale_deleted,
        "storage_prefix": MetadataValue.path(store.url(prefix)),
        "config_hash": config_hash,
        "batch_id": job.batch_id,
        "duration_s": summary.duration_s,
    }
    context.log.info(
        f"{stage.ref}: {summary.messages_in} in, {summary.messages_out} out, {summary.failed} failed, "
        f"{summary.skipped} skipped, {summary.reused} already done, {summary.duration_s} s"
    )
    if summary.failure_samples:
        context.log.warning("failed messages (first few):\n" + "\n".join(summary.failure_samples))
    replay_id = context.run.tags.get(tags.REPLAY_ID)
    if replay_id and summary.stale_deleted:
        db.replays.count_deleted(replay_id, summary.stale_deleted)
    if heartbeat.control.stop.is_set():
        raise DagsterExecutionInterruptedError(
            f"cancelled at {stage.ref}: {summary.messages_in} message(s) finished, {summary.not_started} not started"
        )
    if summary.failed and summary.failed == summary.messages_in:
        raise Failure(f"{stage.ref}: every input message failed ({_first_failure(summary)})", metadata=metadata)
    if summary.failed and stage.route.error_handling.on_failure == "fail_stage":
        raise Failure(f"{summary.failed} message(s) failed at {stage.ref} and the route says fail_stage", metadata=metadata)
    checks = stage_check_results(db, store, execution.id, stage.route.name, stage.name, heartbeat.control.inputs or 0)
    return MaterializeResult(metadata=metadata, check_results=checks)


def _first_failure(summary) -> str:
    first = summary.failure_samples[0] if summary.failure_samples else "no cause recorded"
    return f"{summary.failed} of {summary.messages_in}; first: {first}"


def _cancel_requested(instance: DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and run.status == DagsterRunStatus.CANCELING
