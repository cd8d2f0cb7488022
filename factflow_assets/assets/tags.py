"""Dagster run tags: factflow's own (added to every run of an execution, whoever launched it), and
Dagster's that factflow reads (dagster/_core/storage/tags.py; no public constant names them)."""

EXECUTION_ID = "factflow/execution_id"
PIPELINE = "factflow/pipeline"
CONFIG_HASH = "factflow/config_hash"
RUN_KIND = "factflow/run_kind"  # start | replay | resume | schedule
REPLAY_FROM = "factflow/replay_from"  # route/stage, or parent:route/stage for a replay into a route
REPLAY_ID = "factflow/replay_id"  # the replay record a replay run reports its deletions to
RESUMED_RUN = "factflow/resumed_run_id"  # the run a resume continues


# Dagster's
PARTITION = "dagster/partition"  # on a run of one partition: the execution id
PARTITION_RANGE_START = "dagster/asset_partition_range_start"  # a backfill's run marks its partition so
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
RESUME_RETRY = "dagster/is_resume_retry"  # "Re-execute from failure"
PARENT_RUN = "dagster/parent_run_id"
ROOT_RUN = "dagster/root_run_id"
BACKFILL = "dagster/backfill"
SCHEDULE = "dagster/schedule_name"
SENSOR = "dagster/sensor_name"


def run_tags(execution_id: str, pipeline: str, config_hash: str, kind: str) -> dict[str, str]:
    """The tags of a run over one execution's partition (every run factflow makes has them)."""
    return {
        EXECUTION_ID: execution_id,
        PIPELINE: pipeline,
        CONFIG_HASH: config_hash,
        RUN_KIND: kind,
        PARTITION: execution_id,
    }
