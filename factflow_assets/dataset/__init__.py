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


def load_dataset(execution_id: str, what: str = SEGMENTS, columns: Sequence[str] | None = None) -> pa.Table:
    """An execution's segments (or pages) as one table, from the storage factflow is configured
    with (FACTFLOW_STORAGE_URI, or $FACTFLOW_HOME/storage). For a table too large for memory,
    `iter_dataset` gives it a batch at a time."""
    from .changes import open_dataset

    return open_dataset(_store(), execution_id, what).read(columns=list(columns) if columns else None)


def iter_dataset(execution_id: str, what: str = SEGMENTS, columns: Sequence[str] | None = None, batch_rows: int = 1000) -> Iterator[pa.RecordBatch]:
    from .changes import open_dataset

    return open_dataset(_store(), execution_id, what).iter_batches(batch_size=batch_rows, columns=list(columns) if columns else None)


def _store():
    from resources.storage import ObjectStore

    from ..settings import Settings

    settings = Settings.from_env()
    return ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
