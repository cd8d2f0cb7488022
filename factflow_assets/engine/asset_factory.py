"""From a validated pipeline to Dagster definitions: an asset per stage, a job, a partition set.

Asset keys are [pipeline, route, stage]; each route is an asset group; every stage depends on the
stage that feeds it (across routes too), so the UI shows one connected graph. Stages hand data
over through factflow's storage, not Dagster's IO managers: dependencies are `deps`, and a subset
run (a replay) never loads anything upstream.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations
# (context and resource types) at definition time and needs real classes, not strings.
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
    define_asset_job,
    in_process_executor,
)

from resources.dagster_resources import FactflowDatabaseResource, HttpClientResource, StorageResource

from ..config import Pipeline, Stage, StageRef
from . import tags
from .stage_asset import materialize_stage
from .stage_checks import stage_check_specs

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def stage_asset_key(pipeline_name: str, ref: StageRef) -> AssetKey:
    return AssetKey([pipeline_name, ref.route, ref.stage])


def route_group_name(pipeline_name: str, route: str) -> str:
    return f"{pipeline_name}__{route}"


def build_stage_asset(pipeline: Pipeline, stage: Stage, partitions: DynamicPartitionsDefinition) -> AssetsDefinition:
    ref = stage.ref
    key = stage_asset_key(pipeline.name, ref)

    @asset(
        key=key,
        deps=[stage_asset_key(pipeline.name, stage.upstream)] if stage.upstream else [],
        partitions_def=partitions,
        group_name=route_group_name(pipeline.name, ref.route),
        code_version=pipeline.config_hash,
        description=f"{stage.adapter_type} in route {ref.route}. {stage.route.description}".strip(),
        metadata={"factflow/adapter": stage.adapter_type, "factflow/route": ref.route, "factflow/stage": ref.stage},
        kinds={"python"},
        check_specs=stage_check_specs(key, partitions),
    )
    def stage_asset(
        context: AssetExecutionContext,
        storage: StorageResource,
        database: FactflowDatabaseResource,
        http: HttpClientResource,
    ) -> MaterializeResult:
        return materialize_stage(context, pipeline, ref, storage.open(), database.open(), http)

    return stage_asset


def build_pipeline(pipeline: Pipeline) -> tuple[list[AssetsDefinition], "UnresolvedAssetJobDefinition"]:
    """The assets of every stage and the job that runs them all, in process."""
    partitions = DynamicPartitionsDefinition(name=pipeline.name)
    assets = [build_stage_asset(pipeline, stage, partitions) for stage in pipeline.stages]
    job = define_asset_job(
        name=pipeline.name,
        selection=AssetSelection.assets(*[a.key for a in assets]),
        executor_def=in_process_executor,
        tags={tags.PIPELINE: pipeline.name},
        description=pipeline.spec.description or None,
    )
    return assets, job
