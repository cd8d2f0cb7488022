"""Dagster run tags factflow sets, and reads back to find an execution's runs."""

EXECUTION_ID = "factflow/execution_id"
PIPELINE = "factflow/pipeline"
CONFIG_HASH = "factflow/config_hash"
RUN_KIND = "factflow/run_kind"  # start | replay | resume
