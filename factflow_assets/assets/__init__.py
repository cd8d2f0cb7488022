"""The Dagster mapping: one subsettable multi-asset per pipeline, the dataset asset, checks, schedules, run kinds (architecture §2a, §2b)."""
