"""`factflow export`: an execution's dataset (or the changefeed from an earlier one) as Parquet,
JSON Lines or CSV, to a file or stdout, a batch at a time (memory stays flat however large).

JSON Lines keeps every value as it is (`heading_path` a list); CSV writes a list as its JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from resources.storage import ObjectStore

from .changes import changefeed, changefeed_schema, dataset_batches, open_dataset
from .schema import SCHEMAS

FORMATS = ("parquet", "jsonl", "csv")
BATCH_ROWS = 1000


def export_batches(
    store: ObjectStore, execution_id: str, what: str, changes_since: str | None = None, include_duplicates: bool = False
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """What an export writes: the dataset (rows of duplicate pages left out unless asked for), or
    the changefeed from `changes_since`."""
    if changes_since:
        return changefeed_schema(what), changefeed(store, changes_since, execution_id, what, BATCH_ROWS, include_duplicates)
    open_dataset(store, execution_id, what)  # says at once when there is none
    return SCHEMAS[what], dataset_batches(store, execution_id, what, include_duplicates, BATCH_ROWS)


def write_export(out: BinaryIO, schema: pa.Schema, batches: Iterator[pa.RecordBatch], fmt: str) -> int:
    """Write `batches` to `out` as `fmt`; how many records."""
    count = 0
    if fmt == "parquet":
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                count += batch.num_rows
        return count
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.DictWriter(text, fieldnames=schema.names) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for batch in batches:
        for row in batch.to_pylist():
            if writer is not None:
                writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in row.items()})
            else:
                text.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    text.flush()
    text.detach()
    return count
