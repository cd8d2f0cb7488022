"""The Dagster code location, whole or for one pipeline.

The code location (`definitions.py`, what `dagster dev` and the daemon load) holds every valid
pipeline of the pipelines directory; an invalid YAML is left out (and logged) rather than taking
the whole location down, and `factflow config validate` says what is wrong with it. A command that
runs one execution in process builds only that pipeline's definitions: validating and building
every pipeline on each `execution start` is time the run does not need.
"""

from __future__ import annotations

import logging

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    in_process_executor,
)

from resources.dagster_resources import (
    FactflowDatabaseResource,
    HttpClientResource,
    StorageResource,
)

from ..config import Pipeline, validate_directory
from ..dataset.build import dataset_stages
from ..settings import Settings
from .dataset_asset import dataset_asset_key
from .pipeline_asset import build_pipeline_asset, build_pipeline_job
from .schedules import build_schedule
from .settings_resource import SettingsResource

#: The sensor that keeps the pipelines' datasets current under the daemon.
DATASET_AUTOMATION = "factflow_dataset_automation"
log = logging.getLogger(__name__)


def resources(settings: Settings) -> dict:
    return {
        "storage": StorageResource(uri=settings.storage_uri, endpoint_url=settings.s3_endpoint_url),
        "database": FactflowDatabaseResource(url=settings.database_url),
        "http": HttpClientResource(),
        "settings": SettingsResource.of(settings),
    }


def definitions_of(pipelines: list[Pipeline], settings: Settings) -> Definitions:
    """These pipelines' multi-assets, jobs and schedules, with the resources they use."""
    assets, jobs, schedules = [], [], []
    for pipeline in pipelines:
        asset = build_pipeline_asset(pipeline)
        job = build_pipeline_job(pipeline, asset)
        schedule = build_schedule(pipeline, job)
        assets.append(asset)
        jobs.append(job)
        schedules.extend([schedule] if schedule else [])
    datasets = [dataset_asset_key(p.name) for p in pipelines if dataset_stages(p) is not None]
    sensors = [dataset_automation(datasets)] if datasets else []
    # in process for every job, the implicit one the UI's "Materialize" uses too: one step, no subprocess
    return Definitions(
        assets=assets, jobs=jobs, schedules=schedules, sensors=sensors, resources=resources(settings), executor=in_process_executor
    )


def dataset_automation(datasets: list) -> AutomationConditionSensorDefinition:
    """What evaluates the datasets' eager condition under the daemon, on from the start: a stage
    materialised in the UI has its execution's dataset rebuilt without anyone asking."""
    return AutomationConditionSensorDefinition(
        DATASET_AUTOMATION, target=AssetSelection.assets(*datasets), default_status=DefaultSensorStatus.RUNNING, minimum_interval_seconds=30
    )


def location_definitions(settings: Settings | None = None) -> Definitions:
    """Every valid pipeline of the pipelines directory."""
    settings = settings or Settings.from_env()
    pipelines = []
    for result in validate_directory(settings.pipelines_dir):
        if result.pipeline is None:  # not valid
            log.warning("skipping invalid pipeline %s: %s", result.source, result.errors[0].message)
            continue
        pipelines.append(result.pipeline)
    return definitions_of(pipelines, settings)
