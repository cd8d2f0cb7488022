"""`system metrics`: what the system has done and is doing, from the databases alone.

Executions by status (active ones refreshed first, so a dead run is not counted as running),
Dagster runs queued and in progress, messages processed and failed per route and stage (last
hour and in all), the throughput of each running execution, and the objects and bytes each recent
execution keeps in storage (summed from lineage rows, not listed from storage).
"""

from __future__ import annotations

from datetime import timedelta

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from resources.clock import as_utc, utcnow
from resources.database import FactflowDatabase
from resources.metrics_queries import MetricsQueries

from ..assets.runs import IN_PROGRESS
from .status import refresh_status

#: Throughput is measured over this recent window (and since the execution started).
RATE_WINDOW = timedelta(seconds=60)


def collect_metrics(db: FactflowDatabase, instance: DagsterInstance, executions_shown: int = 20) -> dict:
    running = [r for r in (refresh_status(db, instance, record) for record in db.executions.active()) if r.active]
    queries = MetricsQueries(db.engine)
    now = utcnow()
    rates = queries.throughput([r.id for r in running], RATE_WINDOW)
    throughput = []
    for record in running:
        row = rates.get(record.id) or {"finished": 0, "finished_in_window": 0, "first_started_at": None}
        started = as_utc(row["first_started_at"]) if row["first_started_at"] else None
        elapsed = (now - started).total_seconds() if started else 0
        throughput.append(
            {
                "execution_id": record.id,
                "pipeline": record.pipeline,
                "status": record.status,
                "messages_finished": row["finished"],
                "per_second_last_minute": round(row["finished_in_window"] / RATE_WINDOW.total_seconds(), 2),
                "per_second_overall": round(row["finished"] / elapsed, 2) if elapsed > 0 else 0.0,
            }
        )
    return {
        "executions_by_status": queries.executions_by_status(),
        "runs": {
            "queued": instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED])),
            "in_progress": instance.get_runs_count(RunsFilter(statuses=list(IN_PROGRESS))),
        },
        "messages": queries.messages_by_stage(since=now - timedelta(hours=1)),
        "throughput": throughput,
        "storage": [
            {**row, "objects": int(row["objects"]), "bytes": int(row["bytes"])}
            for row in queries.output_per_execution(executions_shown)
        ],
        "storage_by_pipeline": [
            {**row, "objects": int(row["objects"]), "bytes": int(row["bytes"])} for row in queries.output_per_pipeline()
        ],
    }
