"""Dagster run tags factflow sets, and reads back to find an execution's runs."""

EXECUTION_ID = "factflow/execution_id"
PIPELINE = "factflow/pipeline"
CONFIG_HASH = "factflow/config_hash"
RUN_KIND = "factflow/run_kind"  # start | replay | resume | schedule
REPLAY_FROM = "factflow/replay_from"  # route/stage, or parent:route/stage for a replay into a route
REPLAY_ID = "factflow/replay_id"  # the replay record a replay run reports its deletions to
RESUMED_RUN = "factflow/resumed_run_id"  # the run a resume continues


def run_tags(execution_id: str, pipeline: str, config_hash: str, kind: str) -> dict[str, str]:
    """The tags of a run over one execution's partition (every run factflow makes has them)."""
    return {
        EXECUTION_ID: execution_id,
        PIPELINE: pipeline,
        CONFIG_HASH: config_hash,
        RUN_KIND: kind,
        "dagster/partition": execution_id,
    }
