"""The status words of executions and lineage rows, importable without SQLAlchemy (the CLI builds
its option choices from them at startup)."""

EXECUTION_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = frozenset({"queued", "running"})

LINEAGE_STATUSES = ("pending", "completed", "failed", "skipped", "cancelled")
#: Statuses meaning "this message is done at this stage" when a stage is re-run.
DONE_STATUSES = frozenset({"completed", "skipped"})
