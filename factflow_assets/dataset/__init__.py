"""An execution's dataset: its pages and segments as Parquet, for a search or vector index.

The `[pipeline, "dataset"]` asset writes it (build.py); `factflow export` and the changefeed read
it (export.py, changes.py); a user's own Dagster asset reads it with `load_dataset`:

    from factflow_assets.dataset import load_dataset

    @asset(deps=[AssetKey(["web_to_markdown", "dataset"])], partitions_def=DynamicPartitionsDefinition(name="web_to_markdown"))
    def search_index(context):
        segments = load_dataset(context.partition_key)  # a pyarrow.Table
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from .schema import PAGE_SCHEMA, PAGES, SEGMENT_SCHEMA, SEGMENTS, dataset_key, page_id, segment_id

__all__ = ["PAGES", "PAGE_SCHEMA", "SEGMENTS", "SEGMENT_SCHEMA", "dataset_key", "iter_dataset", "load_dataset", "page_id", "segment_id"]


def load_dataset(execution_id: str, what: str = SEGMENTS, columns: Sequence[str] | None = None, include_duplicates: bool = False) -> pa.Table:
    """An execution's segments (or pages) as one table, from the storage factflow is configured
    with (FACTFLOW_STORAGE_URI, or $FACTFLOW_HOME/storage); rows of pages that repeat another
    page left out unless asked for. For a table too large for memory, `iter_dataset` gives it a
    batch at a time."""
    from .schema import SCHEMAS

    batches = list(iter_dataset(execution_id, what, columns, include_duplicates=include_duplicates))
    if batches:
        return pa.Table.from_batches(batches)
    schema = SCHEMAS[what]
    return schema.empty_table() if columns is None else pa.schema([schema.field(name) for name in columns]).empty_table()


def iter_dataset(
    execution_id: str, what: str = SEGMENTS, columns: Sequence[str] | None = None, batch_rows: int = 1000, include_duplicates: bool = False
) -> Iterator[pa.RecordBatch]:
    from .changes import dataset_batches

    return dataset_batches(_store(), execution_id, what, include_duplicates, batch_rows, list(columns) if columns else None)


def _store():
    from resources.storage import ObjectStore

    from ..settings import Settings

    settings = Settings.from_env()
    return ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
