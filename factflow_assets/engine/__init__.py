"""The Dagster-free streaming engine: stage runners, their inputs and hand-offs, the frontier, the heartbeat, incremental carry-over (architecture §2, §2a)."""
