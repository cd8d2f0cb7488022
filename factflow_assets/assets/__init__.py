"""The Dagster mapping: one subsettable multi-asset per pipeline, the dataset asset, checks,
schedules, run kinds, retention, the webhook (architecture §2a, §2b)."""
