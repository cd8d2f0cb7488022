"""What the CLI and the UI ask for, as plain functions: launch, replay, resume, cancel, delete and prune, status, routes, health, metrics (architecture §7)."""
