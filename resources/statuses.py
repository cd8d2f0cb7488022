"""The status words of executions and lineage rows, importable without SQLAlchemy (the CLI builds
its option choices from them at startup)."""

EXECUTION_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = frozenset({"queued", "running"})

#: `unchanged`: an incremental execution carried the baseline's outputs over (the source said
#: nothing changed, or the input was what the baseline had): done, with outputs, no work redone.
LINEAGE_STATUSES = ("pending", "completed", "unchanged", "failed", "skipped", "cancelled")
#: Statuses meaning "this message is done at this stage" when a stage is re-run.
DONE_STATUSES = frozenset({"completed", "unchanged", "skipped"})
#: Statuses of an invocation whose outputs are current.
WITH_OUTPUTS = frozenset({"completed", "unchanged"})
