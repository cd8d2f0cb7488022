"""Dagster run tags factflow sets, and reads back to find an execution's runs."""

EXECUTION_ID = "factflow/execution_id"
PIPELINE = "factflow/pipeline"
CONFIG_HASH = "factflow/config_hash"
RUN_KIND = "factflow/run_kind"  # start | replay | resume
REPLAY_FROM = "factflow/replay_from"  # route/stage, or parent:route/stage for a replay into a route
RESUMED_RUN = "factflow/resumed_run_id"  # the run a resume continues
