"""An execution's Dagster runs: how to find them, and what their statuses mean to factflow.

Every run of an execution's partition is one of its runs, whoever launched it: runs of one
partition carry `dagster/partition`, a backfill's runs the one-partition range instead.
"""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRecord,
    RunsFilter,
)

from . import tags

RUN_STATUS = {
    DagsterRunStatus.QUEUED: "queued",
    DagsterRunStatus.NOT_STARTED: "queued",
    DagsterRunStatus.MANAGED: "queued",
    DagsterRunStatus.STARTING: "running",
    DagsterRunStatus.STARTED: "running",
    DagsterRunStatus.CANCELING: "running",
    DagsterRunStatus.SUCCESS: "completed",
    DagsterRunStatus.FAILURE: "failed",
    DagsterRunStatus.CANCELED: "cancelled",
}
#: Dagster statuses of a run that a live process is (or should be) executing.
IN_PROGRESS = frozenset({DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING})


def execution_runs(instance: DagsterInstance, execution_id: str, limit: int | None = None, stages_only: bool = False) -> list[RunRecord]:
    """The execution's Dagster runs, newest first: every run of its partition, whoever launched it
    (a backfill's runs name it as a one-partition range instead of a partition). `stages_only`
    leaves out runs that only rebuilt the dataset: they say nothing of how the execution went."""
    fetch = None if stages_only else limit
    found = {
        record.dagster_run.run_id: record
        for filters in ({tags.PARTITION: execution_id}, {tags.PARTITION_RANGE_START: execution_id, tags.PARTITION_RANGE_END: execution_id})
        for record in instance.get_run_records(RunsFilter(tags=filters), limit=fetch)
    }
    newest_first = sorted(found.values(), key=lambda record: record.create_timestamp, reverse=True)
    if stages_only:
        newest_first = [record for record in newest_first if not is_dataset_only(record.dagster_run)]
    return newest_first[:limit] if limit else newest_first


#: The last part of a pipeline's dataset asset key, [pipeline, "dataset"].
DATASET = "dataset"


def is_dataset_only(run: DagsterRun) -> bool:
    """A run that selected nothing but a dataset (the automation's, after a stage changed)."""
    selection = run.asset_selection
    return selection is not None and bool(selection) and all(len(key.path) == 2 and key.path[1] == DATASET for key in selection)


def was_interrupted(instance: DagsterInstance, run_id: str) -> bool:
    """Whether the run's step ended on a signal (Ctrl+C, or a SIGTERM Dagster maps to one) rather
    than on an error: Dagster raises DagsterExecutionInterruptedError in the step and fails it."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        error = event.step_failure_data.error if event is not None else None
        while error is not None:
            if error.cls_name == "DagsterExecutionInterruptedError":
                return True
            error = error.cause
    return False


def run_failure(instance: DagsterInstance, run_id: str) -> str:
    """Why a run failed, in one line: its step's own description (a stage's `Failure` names the
    stage and the first failed message), else the exception that broke the step (the innermost
    cause: Dagster wraps it in its own "error occurred while executing"), else the run's."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        error = data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            return error.message.strip().splitlines()[0]
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records:
        return record.event_log_entry.message or "the Dagster run failed"
    return "the Dagster run failed"
