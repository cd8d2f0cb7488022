"""The engine: the stage loop and its Dagster wrapping."""
