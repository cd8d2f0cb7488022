"""The dataset as a Dagster asset: `[pipeline, "dataset"]`, one more spec of the pipeline's
multi-asset, partitioned like the stages and downstream of the stages that make pages and
segments, so a user's own asset can hang on it.

Every run factflow launches selects it (start, resume, replay, an incremental start): it is
written once the stages have finished. A run that changes stages without it (the UI's
"Materialize" on one stage, a backfill) leaves it stale, and its eager automation condition has
the daemon rebuild it from storage in a run of its own, which changes nothing else and says
nothing of how the execution went (`runs.is_dataset_only`).
"""

from __future__ import annotations

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    DataVersion,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
)

from resources.database import FactflowDatabase
from resources.storage import ObjectStore

from ..config import Pipeline
from ..dataset.build import DatasetResult, dataset_stages, write_dataset
from ..dataset.schema import PAGE_SCHEMA, SEGMENT_SCHEMA, dataset_key, describe_schema
from .runs import DATASET


def dataset_asset_key(pipeline_name: str) -> AssetKey:
    return AssetKey([pipeline_name, DATASET])


def dataset_spec(pipeline: Pipeline, partitions: DynamicPartitionsDefinition, stage_key) -> AssetSpec | None:
    """The pipeline's dataset asset, or None for a pipeline that makes no markdown."""
    stages = dataset_stages(pipeline)
    if stages is None:
        return None
    feeding = [stage_key(pipeline.name, stage.ref) for stage in (stages.pages, stages.segments) if stage is not None]
    return AssetSpec(
        key=dataset_asset_key(pipeline.name),
        deps=feeding,
        partitions_def=partitions,
        group_name=f"{pipeline.name}__dataset",
        code_version=pipeline.config_hash,
        automation_condition=AutomationCondition.eager(),
        description=(
            "The execution's pages and segments as Parquet (executions/<execution>/dataset/pages.parquet, "
            "segments.parquet), for a search or vector index. Load it in an asset of your own with "
            "factflow_assets.dataset.load_dataset(context.partition_key)."
        ),
        metadata={"factflow/segments_schema": MetadataValue.md(_schema_md(SEGMENT_SCHEMA)), "factflow/pages_schema": MetadataValue.md(_schema_md(PAGE_SCHEMA))},
        kinds={"parquet"},
    )


def materialize_dataset(
    context: AssetExecutionContext, pipeline: Pipeline, db: FactflowDatabase, store: ObjectStore, execution_id: str, baseline: str | None
) -> tuple[MaterializeResult, DatasetResult]:
    """Write the execution's dataset and report it: rows, bytes and URI per table, the data
    version (a hash of every row's content hash), and against the baseline what changed; with
    what was written (for the webhook)."""
    if baseline and not store.exists(dataset_key(baseline, "pages")):
        baseline = None  # an older baseline without a dataset: nothing to compare with
    result = write_dataset(db, store, execution_id, pipeline, baseline, run_id=context.run.run_id)
    metadata: dict = {}
    for what, written in result.written.items():
        metadata[f"{what}_rows"] = written.rows
        metadata[f"{what}_bytes"] = written.bytes
        metadata[f"{what}_uri"] = MetadataValue.path(store.url(written.key))
    metadata["duplicate_pages"] = sum(result.duplicates.values())
    for kind, count in result.duplicates.items():
        metadata[f"duplicate_pages_{kind}"] = count
    for what, counts in (result.changes or {}).items():
        for change, count in counts.items():
            metadata[f"{what}_{change}"] = count
    if baseline:
        metadata["baseline"] = baseline
    context.log.info(f"dataset of {execution_id}: " + ", ".join(f"{w.rows} {w.what}" for w in result.written.values()))
    materialized: MaterializeResult = MaterializeResult(
        asset_key=dataset_asset_key(pipeline.name), metadata=metadata, data_version=DataVersion(result.data_version)
    )
    return materialized, result


def _schema_md(schema) -> str:
    return "\n".join(f"- `{line.split(':', 1)[0]}`:{line.split(':', 1)[1]}" for line in describe_schema(schema).splitlines())
