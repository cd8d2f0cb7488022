"""From a validated pipeline to Dagster definitions: one subsettable multi-asset, a job, a partition set.

The multi-asset holds the stages and, for a pipeline that makes markdown, its dataset
(dataset_asset.py).

The pattern dagster-dbt uses for a dbt project (architecture §2a): one `AssetSpec` per stage, key
[pipeline, route, stage], in a group per route, depending on the stage that feeds it (across routes
too), so the UI shows one connected graph; the stage checks as `check_specs`; `can_subset=True`,
so a run materialises exactly the stages it selected, streaming together in one step and reported
one by one as each finishes. Stages hand data over through factflow's storage, not Dagster's IO
managers: dependencies are `deps`, and a subset run never loads anything upstream.
"""

# No `from __future__ import annotations` here: Dagster reads the asset function's annotations
# (context and resource types) at definition time and needs real classes, not strings.
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    define_asset_job,
    in_process_executor,
    multi_asset,
)

from resources.dagster_resources import (
    FactflowDatabaseResource,
    HttpClientResource,
    StorageResource,
)
from resources.outage import waiting_longer

from ..config import Pipeline, Stage, StageRef
from . import tags
from .checks import stage_check_specs
from .dataset_asset import dataset_spec
from .materialize import materialize_stages
from .settings_resource import SettingsResource


def stage_asset_key(pipeline_name: str, ref: StageRef) -> AssetKey:
    return AssetKey([pipeline_name, ref.route, ref.stage])


def route_group_name(pipeline_name: str, route: str) -> str:
    return f"{pipeline_name}__{route}"


def stage_spec(pipeline: Pipeline, stage: Stage, partitions: DynamicPartitionsDefinition) -> AssetSpec:
    ref = stage.ref
    return AssetSpec(
        key=stage_asset_key(pipeline.name, ref),
        deps=[stage_asset_key(pipeline.name, stage.upstream)] if stage.upstream else [],
        partitions_def=partitions,
        group_name=route_group_name(pipeline.name, ref.route),
        code_version=pipeline.config_hash,
        description=f"{stage.adapter_type} in route {ref.route}. {stage.route.description}".strip(),
        metadata={"factflow/adapter": stage.adapter_type, "factflow/route": ref.route, "factflow/stage": ref.stage},
        kinds={"python"},
    )


def build_pipeline_asset(pipeline: Pipeline) -> AssetsDefinition:
    """Every stage of the pipeline as one subsettable multi-asset over its executions' partitions."""
    partitions = DynamicPartitionsDefinition(name=pipeline.name)
    keys = {stage.ref: stage_asset_key(pipeline.name, stage.ref) for stage in pipeline.stages}
    dataset = dataset_spec(pipeline, partitions, stage_asset_key)

    @multi_asset(
        name=f"{pipeline.name}__stages",
        specs=[stage_spec(pipeline, stage, partitions) for stage in pipeline.stages] + ([dataset] if dataset else []),
        check_specs=[spec for stage in pipeline.stages for spec in stage_check_specs(keys[stage.ref], partitions, stage.adapter_type)],
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.multi_run(1),  # one run per execution, each its own operation
        description=pipeline.spec.description or None,
    )
    def stages(
        context: AssetExecutionContext,
        storage: StorageResource,
        database: FactflowDatabaseResource,
        http: HttpClientResource,
        settings: SettingsResource,
    ):
        run_settings = settings.settings()
        # a run rides out a database outage whole (a command would say at once it cannot reach it)
        with waiting_longer(run_settings.database_outage_seconds):
            yield from materialize_stages(context, pipeline, keys, storage.open(), database.open(), http, run_settings)

    return stages


def build_pipeline_job(pipeline: Pipeline, asset: AssetsDefinition):
    """The job that runs every stage (a subset when a run selects one), in process, one step."""
    return define_asset_job(
        name=pipeline.name,
        selection=AssetSelection.assets(asset),
        executor_def=in_process_executor,
        tags={tags.PIPELINE: pipeline.name},
        description=pipeline.spec.description or None,
    )
