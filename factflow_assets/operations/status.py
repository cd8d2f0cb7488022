"""An execution's status follows its Dagster runs (architecture §2.6, §2b).

The status column is refreshed from the newest run of the execution's partition whenever an
active execution is read, so runs the daemon launched (or the UI, a backfill, `dagster asset
materialize` started) are reflected without any process of factflow's watching them. A run whose
process was killed never tells Dagster, so its run stays "started" forever; the runner's
heartbeat and pid (`resources/runners_store.py`)
tell such a run apart, and the execution becomes `interrupted`: its pending lineage rows are
closed as the interrupted attempt and the Dagster run is marked failed, so the UI agrees.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus, RunRecord

from resources.clock import as_utc
from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord
from resources.runners_store import Runner

from ..assets import tags
from ..assets.checks import STRUCTURE_ADAPTER
from ..assets.runs import IN_PROGRESS, RUN_STATUS, execution_runs, run_failure
from ..engine.executions import frozen_pipeline
from ..engine.structure_totals import structure_totals
from .stage_counts import stage_progress

FAILURES_SHOWN = 10


def refresh_status(db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord) -> ExecutionRecord:
    if not record.active:
        return record
    runs = execution_runs(instance, record.id, limit=1, stages_only=True)
    newest = runs[0] if runs else None
    runner = db.runners.get(record.id)
    if runner is not None and record.status in ("running", "queued") and _speaks_for(runner, newest):
        # a process that runs the execution here claimed it (at once when it created it) and its
        # run, which it executes itself: NOT_STARTED means it has yet to, not that a queue holds it
        claimed_run_exists = newest is not None and newest.dagster_run.run_id == runner.dagster_run_id
        if newest is None or not claimed_run_exists or newest.dagster_run.status in IN_PROGRESS | {DagsterRunStatus.NOT_STARTED}:
            reason = runner.gone_because()
            if reason:
                return mark_interrupted(db, instance, record, runner.dagster_run_id, reason)
            if not claimed_run_exists:
                return record  # its process is still creating the run
    if newest is None:
        return record
    run = newest.dagster_run
    status = RUN_STATUS.get(run.status, record.status)
    if status != record.status or run.run_id != record.dagster_run_id:
        error = run_failure(instance, run.run_id) if status == "failed" else None
        db.executions.set_status(record.id, status, run_id=run.run_id, error=error)
        record = db.executions.resolve(record.id)
    return record


def _speaks_for(runner: Runner, newest: RunRecord | None) -> bool:
    """Whether the runner row is about the execution's newest run, or about a run its process
    claimed and Dagster has not recorded yet (rather than about an earlier, finished run)."""
    if newest is None or runner.dagster_run_id == newest.dagster_run.run_id:
        return True
    return runner.heartbeat_at > as_utc(newest.create_timestamp)


def mark_interrupted(db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord, run_id: str | None, reason: str) -> ExecutionRecord:
    """Record that the execution's run died: its unfinished lineage rows, the Dagster run, the execution."""
    if run_id:
        db.lineage.close_interrupted(record.id, run_id, f"the run stopped before this message finished: {reason}")
        run = instance.get_run_by_id(run_id)
        if run is not None and (run.status in IN_PROGRESS or run.status == DagsterRunStatus.NOT_STARTED):
            instance.report_run_failed(run, message=f"factflow: the run was interrupted: {reason}")
    db.executions.set_status(
        record.id, "interrupted", run_id=run_id, error=f"the run was interrupted: {reason}; resume it with: factflow execution resume {record.id}"
    )
    return db.executions.resolve(record.id)


def markdown_structure(db: FactflowDatabase, record: ExecutionRecord) -> list[dict]:
    """Per html_to_markdown stage: what the pages' main regions held and what the markdown kept,
    by kind, and the pages that lost some (the first few)."""
    shown = []
    for stage in frozen_pipeline(db, record.config_hash, record.pipeline).stages:
        if stage.adapter_type != STRUCTURE_ADAPTER:
            continue
        totals = structure_totals(db, record.id, stage.route.name, stage.name)
        shown.append(
            {
                "stage": f"{stage.route.name}/{stage.name}",
                "pages": totals["pages"],
                "kinds": {kind: {"region": held, "kept": kept} for kind, (held, kept) in totals["kinds"].items()},
                "pages_with_losses": len(totals["pages_with_losses"]),
                "first_pages_with_losses": totals["pages_with_losses"][:FAILURES_SHOWN],
            }
        )
    return shown


def execution_summary(db: FactflowDatabase, instance: DagsterInstance, record: ExecutionRecord) -> dict:
    """Everything `execution get` shows: the record, per-route and per-stage counts, runs."""
    record = refresh_status(db, instance, record)
    stages = stage_progress(db, record)
    routes: dict[str, dict] = {}
    for row in stages:
        counted = ("completed", "unchanged", "failed", "skipped", "in_flight")
        route = routes.setdefault(row["route"], {"route": row["route"], **dict.fromkeys(counted, 0)})
        for name in counted:
            route[name] += row[name]
    runs = [
        {
            "run_id": r.dagster_run.run_id,
            "status": r.dagster_run.status.value,
            "kind": r.dagster_run.tags.get(tags.RUN_KIND),
            "replay_from": r.dagster_run.tags.get(tags.REPLAY_FROM),
            "backfill": r.dagster_run.tags.get(tags.BACKFILL),
            "started_at": r.start_time,
            "ended_at": r.end_time,
        }
        for r in execution_runs(instance, record.id)
    ]
    return {
        **record.to_dict(),
        "routes": list(routes.values()),
        "stages": stages,
        "runs": runs,
        "failures": [
            {
                "lineage_id": f["id"],
                "stage": f"{f['route']}/{f['stage']}",
                "message_id": f["message_id"],
                "url": (f["metadata"] or {}).get("url"),
                "error": f"{f['error_class']}: {f['error_message']}",
            }
            for f in db.lineage_queries.failures(record.id, limit=FAILURES_SHOWN)
        ],
        "structure": markdown_structure(db, record),
        "duplicates": sum(
            row["count"] for row in db.lineage.stage_counts(record.id) if (row["route"], row["stage"], row["status"]) == ("dataset", "dataset", "skipped")
        ),
        "children": [child.id for child in db.executions.children(record.id)],
        "replays": [replay.to_dict() for replay in db.replays.involving(record.id)],
        "deliveries": [delivery.to_dict() for delivery in db.deliveries.of_execution(record.id)],
    }
