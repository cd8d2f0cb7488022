"""Cancel: stop an execution gracefully (architecture §6).

A queued run is cancelled at once. A running one is moved to CANCELING in Dagster; the stage loop
reads that through its heartbeat, takes no new message, lets the ones in flight finish and record
their lineage, and ends the step as interrupted, which Dagster records as a cancelled run. What
was not started is left for `execution resume`.
"""

from __future__ import annotations

from dagster import DagsterInstance, DagsterRunStatus

from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord

from ..assets.runs import IN_PROGRESS, execution_runs
from .status import refresh_status

CANCEL_MESSAGE = "factflow execution cancel: no new messages; the ones in flight finish"


def request_cancel(db: FactflowDatabase, instance: DagsterInstance, execution: str) -> ExecutionRecord:
    """Ask the execution's run to stop; return the record (already `cancelled` if it had not started)."""
    record = refresh_status(db, instance, db.executions.resolve(execution))
    if not record.active:
        raise FactflowError(f"execution {record.id} is {record.status}: nothing to cancel")
    runs = execution_runs(instance, record.id, limit=1)
    run = runs[0].dagster_run if runs else None
    if run is None or run.run_id != record.dagster_run_id:
        if record.status == "queued":
            db.executions.set_status(record.id, "cancelled", error="cancelled before it started")
            return db.executions.resolve(record.id)
        raise FactflowError(f"the run of execution {record.id} is being created; cancel again in a moment")
    if run.status in IN_PROGRESS:
        if run.status != DagsterRunStatus.CANCELING:
            instance.report_run_canceling(run, message=CANCEL_MESSAGE)
        return record
    instance.report_run_canceled(run, message="factflow execution cancel, before the run started")
    db.executions.set_status(record.id, "cancelled", error="cancelled before it started")
    return db.executions.resolve(record.id)
