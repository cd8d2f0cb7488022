"""The Dagster code location entry: every valid pipeline YAML in the pipelines directory
(`assets/location.py` builds it)."""

from resources.masking import install_log_masking

from .assets.location import location_definitions

install_log_masking()  # code servers and runs launched from this location log through it too
defs = location_definitions()
