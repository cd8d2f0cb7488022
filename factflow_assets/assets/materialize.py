"""What the pipeline's multi-asset does when Dagster runs it for one partition (one execution).

Thin around the Dagster-free parts: `run_kinds.begin` decides and records what the run is (a new
execution, a first run, a replay, a resume), `stream.StreamRun` runs the selected stages together
under a heartbeat, and each stage that has seen all of its input is reported at once as a
`MaterializeResult` with its summary and checks, while the others go on. Per-message outcomes go
to factflow's lineage, not to Dagster's event log.

A stage that had input and of which nothing succeeded, or that failed messages on a route that
says `fail_stage`, is not reported; nor is a stage whose input was cut short by it. The step then
fails, naming those stages, after the others have finished. A terminated run (the UI's
"Terminate", `execution cancel`, Ctrl+C) stops gracefully: no stage takes a new message, the ones
in flight finish and are recorded, and the step ends interrupted, which Dagster records as a
cancelled run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetExecutionContext,
    AssetKey,
    DagsterExecutionInterruptedError,
    DagsterInstance,
    DagsterRunStatus,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from resources.dagster_resources import HttpClientResource
from resources.database import FactflowDatabase
from resources.errors import FactflowError, error_text
from resources.executions_store import ExecutionRecord
from resources.hashing import content_hash
from resources.outage import is_outage, retry
from resources.statuses import WITH_OUTPUTS
from resources.storage import ObjectStore, stage_prefix

from ..config import Pipeline, StageRef
from ..engine.executions import frozen_pipeline, replay_source
from ..engine.heartbeat import Heartbeat
from ..engine.stage_state import FaultBudgets
from ..engine.stream import StageOutcome, StreamRun, stage_sources, warm_up
from ..fetching.network_policy import NetworkPolicy
from ..settings import Settings
from . import run_kinds, tags
from .checks import stage_check_results
from .dataset_asset import dataset_asset_key, materialize_dataset
from .notify import Notifier
from .retention import apply_retention
from .runs import execution_runs

#: The run statuses in which a run is asked to stop (the UI's "Terminate" with force goes straight
#: to CANCELED while the process still runs).
STOPPING = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)


def stage_of_key(key: AssetKey) -> StageRef:
    return StageRef(key.path[1], key.path[2])


def materialize_stages(
    context: AssetExecutionContext,
    pipeline: Pipeline,
    keys: dict[StageRef, AssetKey],
    store: ObjectStore,
    db: FactflowDatabase,
    http: HttpClientResource,
    settings: Settings,
) -> Iterator[MaterializeResult]:
    run = context.run
    warm_up([stage for stage in pipeline.stages if keys[stage.ref] in context.selected_asset_keys])
    selected = tuple(stage.ref for stage in pipeline.stages if keys[stage.ref] in context.selected_asset_keys)
    with_dataset = dataset_asset_key(pipeline.name) in context.selected_asset_keys
    if not selected and with_dataset:  # the automation's rebuild: from what the stages hold, nothing else runs
        yield from _dataset_only(context, pipeline, store, db)
        return
    journals = settings.home / "journal"
    db.lineage.replay_journals(journals, context.partition_key)  # rows an earlier run kept while the database was away
    earlier = execution_runs(context.instance, context.partition_key, limit=2)
    facts = run_kinds.RunFacts(
        run.run_id, context.partition_key, selected, run.tags, sum(r.dagster_run.run_id != run.run_id for r in earlier)
    )
    try:
        op = run_kinds.begin(db, store, pipeline, facts)
    except FactflowError as error:
        raise Failure(str(error)) from None
    context.instance.add_run_tags(run.run_id, op.run_tags())
    record = op.record
    sources = stage_sources(op.stages, record.id, record.init_payload, store, replay_source(record))
    policy = NetworkPolicy.for_execution(op.pipeline.spec.network, record.init_payload)
    context.log.info(f"{op.kind} of execution {record.id}: {', '.join(str(stage.ref) for stage in op.stages)}")

    with Heartbeat(db, record.id, run.run_id, op.stages, lambda: _stop_requested(context.instance, run.run_id)) as heartbeat:
        budgets = FaultBudgets(storage_seconds=settings.storage_retry_seconds, database_seconds=settings.database_outage_seconds)
        stream = StreamRun(
            record.id, op.pipeline.config_hash, run.run_id, sources, store, db, lambda: http.client(policy.check),
            heartbeat.control, budgets, journals / f"{record.id}-{run.run_id}.jsonl", network=policy,
            # a replay redoes its stages with the code as it is now: nothing is carried over for it
            baseline=None if op.kind == run_kinds.REPLAY else (record.origin or {}).get("since"),
        ).start()
        report = _Report(context, op, keys, store, db, settings.database_outage_seconds)
        try:
            for outcome in stream.outcomes():
                yield from report.stage_done(outcome)
        except DagsterExecutionInterruptedError:  # terminated: the stages stop taking messages, then report
            stream.stop()
            for outcome in stream.outcomes():
                yield from report.stage_done(outcome)
            raise
    if heartbeat.control.stop.is_set():
        raise DagsterExecutionInterruptedError(f"cancelled: {report.unfinished()}")
    notifier = Notifier(op.pipeline.spec.notify, policy, db, record, run.run_id, op.kind, context.log.warning)
    if report.failures:
        notifier.failed("; ".join(report.failures))
        raise Failure("; ".join(report.failures))
    if with_dataset:
        baseline = None if op.kind == run_kinds.REPLAY else (record.origin or {}).get("since")
        yield from _dataset(context, op.pipeline, db, store, record, baseline, notifier)
    if op.kind == run_kinds.START and (record.origin or {}).get("kind") == "schedule":
        _apply_retention(context, settings, db, store, record)


def _dataset_only(context: AssetExecutionContext, pipeline: Pipeline, store: ObjectStore, db: FactflowDatabase) -> Iterator[MaterializeResult]:
    record = db.executions.get(context.partition_key)
    if record is None:
        raise Failure(f"partition {context.partition_key} has no execution: there is no dataset to write")
    context.instance.add_run_tags(context.run.run_id, {tags.RUN_KIND: run_kinds.DATASET, tags.EXECUTION_ID: record.id})
    frozen = frozen_pipeline(db, record.config_hash, record.pipeline)  # the stages as the execution ran them
    policy = NetworkPolicy.for_execution(frozen.spec.network, record.init_payload)
    notifier = Notifier(frozen.spec.notify, policy, db, record, context.run.run_id, run_kinds.DATASET, context.log.warning)
    yield from _dataset(context, frozen, db, store, record, (record.origin or {}).get("since"), notifier)


def _dataset(
    context: AssetExecutionContext, pipeline: Pipeline, db: FactflowDatabase, store: ObjectStore, record: ExecutionRecord,
    baseline: str | None, notifier: Notifier,
) -> Iterator[MaterializeResult]:
    """The dataset written and reported, then the webhook told (a failed write is a failed event)."""
    try:
        materialized, written = materialize_dataset(context, pipeline, db, store, record.id, baseline)
    except Exception as error:
        notifier.failed(f"dataset: {error_text(error)}")
        raise
    yield materialized
    notifier.completed(store, written)


def _apply_retention(context: AssetExecutionContext, settings: Settings, db: FactflowDatabase, store: ObjectStore, record: ExecutionRecord) -> None:
    """The YAML's `retention:` after a scheduled execution completed. The execution did its job
    whatever happens here, so a failing delete is a warning (the next schedule tick tries again)."""
    try:
        deleted = apply_retention(settings, db, store, context.instance, record.pipeline, record.id)
    except Exception as exc:  # noqa: BLE001 - reported, and retried by the next tick
        context.log.warning(f"retention did not finish: {error_text(exc)}")
        return
    if deleted:
        context.log.info(f"retention deleted {len(deleted)} older execution(s): {', '.join(deleted)}")


class _Report:
    """Turns each stage's outcome into its materialisation, or into a reason the step fails."""

    def __init__(
        self, context: AssetExecutionContext, op: run_kinds.Operation, keys: dict[StageRef, AssetKey], store: ObjectStore,
        db: FactflowDatabase, database_budget: float,
    ):
        self.context = context
        self.database_budget = database_budget
        self.op = op
        self.keys = keys
        self.store = store
        self.db = db
        self.reported: set[StageRef] = set()
        self.outcomes_expected = {stage.ref for stage in op.stages}
        self.failures: list[str] = []
        self.outcomes: dict[StageRef, StageOutcome] = {}

    def stage_done(self, outcome: StageOutcome) -> Iterator[MaterializeResult]:
        stage, summary = outcome.stage, outcome.summary
        self.outcomes[stage.ref] = outcome
        log = self.context.log
        log.info(
            f"{stage.ref}: {summary.messages_in} in, {summary.messages_out} out, {summary.failed} failed, "
            f"{summary.skipped} skipped, {summary.reused} already done, {summary.unchanged} unchanged, {summary.duration_s} s"
        )
        if summary.failure_samples:
            log.warning(f"{stage.ref}: failed messages (first few):\n" + "\n".join(summary.failure_samples))
        if outcome.error is not None:
            self.failures.append(f"{stage.ref}: {type(outcome.error).__name__}: {outcome.error}")
            return
        if not summary.complete:
            return  # stopped, or its input was cut short: not materialised, a resume continues it
        ran_upstream = stage.upstream is not None and stage.upstream in self.outcomes_expected
        if ran_upstream and stage.upstream not in self.reported:
            return  # what fed it in this run did not materialise: neither does it (a resume re-runs both)
        if summary.all_failed:
            first = summary.failure_samples[0] if summary.failure_samples else "no cause recorded"
            self.failures.append(f"{stage.ref}: every input message failed ({summary.failed} of {summary.messages_in}; first: {first})")
            return
        if summary.failed and stage.route.error_handling.on_failure == "fail_stage":
            self.failures.append(f"{summary.failed} message(s) failed at {stage.ref} and the route says fail_stage")
            return
        if self.op.replay is not None and summary.stale_deleted:
            self.db.replays.count_deleted(self.op.replay.id, summary.stale_deleted)
        self.reported.add(stage.ref)
        yield self._materialization(outcome)

    def _materialization(self, outcome: StageOutcome) -> MaterializeResult:
        stage, summary, record = outcome.stage, outcome.summary, self.op.record
        key = self.keys[stage.ref]
        prefix = stage_prefix(record.id, stage.route.name, stage.name)
        metadata: dict[str, Any] = {
            "messages_in": summary.messages_in,
            "messages_out": summary.messages_out,
            "messages_failed": summary.failed,
            "messages_skipped": summary.skipped,
            "messages_reused": summary.reused,
            "messages_unchanged": summary.unchanged,
            "stale_objects_deleted": summary.stale_deleted,
            "input": outcome.input,
            "storage_prefix": MetadataValue.path(self.store.url(prefix)),
            "config_hash": self.op.pipeline.config_hash,
            "run_kind": self.op.kind,
            "batch_id": outcome.batch_id,
            "duration_s": summary.duration_s,
        }
        wanted = self.context.selected_asset_check_keys
        checks = [
            check for check in _waiting_out_an_outage(
                lambda: stage_check_results(
                    self.db, self.store, record.id, stage.route.name, stage.name, summary.messages_in, key, stage.adapter_type
                ),
                self.database_budget,
            )
            if AssetCheckKey(key, check.check_name) in wanted
        ]
        return MaterializeResult(asset_key=key, metadata=metadata, check_results=checks, data_version=self._data_version(stage))

    def _data_version(self, stage) -> DataVersion:
        """A hash of the content hashes of what the stage holds for the execution: the same when a
        re-crawl changed nothing, so the UI can tell."""
        rows = _waiting_out_an_outage(
            lambda: self.db.lineage_queries.current_outputs(self.op.record.id, [(stage.route.name, stage.name)], WITH_OUTPUTS),
            self.database_budget,
        )
        return DataVersion(content_hash("\n".join(sorted(row["output_hash"] or "" for row in rows)).encode()))

    def unfinished(self) -> str:
        taken = sum(o.summary.messages_in for o in self.outcomes.values())
        left = sum(o.summary.not_started for o in self.outcomes.values())
        return f"{taken} message(s) finished, {left} handed on or listed and not started"


def _waiting_out_an_outage(read, budget: float):
    """`read()` (of the factflow database), tried again while the database is away, within budget."""
    return retry(read, is_fault=is_outage, seconds=budget, first=0.5)


def _stop_requested(instance: DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is not None and run.status in STOPPING
