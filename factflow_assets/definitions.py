"""The Dagster code location: every valid pipeline YAML in the pipelines directory.

An invalid YAML is left out (and logged) rather than taking the whole location down; `factflow
config validate` says what is wrong with it.
"""

from __future__ import annotations

import logging

from dagster import Definitions

from resources.dagster_resources import FactflowDatabaseResource, HttpClientResource, StorageResource
from resources.masking import install_log_masking

from .config import validate_directory
from .engine.asset_factory import build_pipeline
from .engine.schedules import build_schedule
from .settings import Settings

log = logging.getLogger(__name__)


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    assets, jobs, schedules = [], [], []
    for result in validate_directory(settings.pipelines_dir):
        if not result.valid:
            log.warning("skipping invalid pipeline %s: %s", result.source, result.errors[0].message)
            continue
        pipeline_assets, job = build_pipeline(result.pipeline)
        assets.extend(pipeline_assets)
        jobs.append(job)
        pipeline_schedule = build_schedule(result.pipeline, job)
        if pipeline_schedule is not None:
            schedules.append(pipeline_schedule)
    return Definitions(
        assets=assets,
        jobs=jobs,
        schedules=schedules,
        resources={
            "storage": StorageResource(uri=settings.storage_uri, endpoint_url=settings.s3_endpoint_url),
            "database": FactflowDatabaseResource(url=settings.database_url),
            "http": HttpClientResource(),
        },
    )


install_log_masking()  # code servers and runs launched from this location log through it too
defs = build_definitions()
