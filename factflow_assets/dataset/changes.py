"""What changed between two executions' datasets, by stable id and content hash: the changefeed.

Applying a baseline's export and then the changefeed from it gives the new export: every row that
is new or changed is an `upsert` (the whole row), every id the baseline had and the new dataset has
not is a `delete` (the id alone). "Changed" is any column but those that only say which execution
read the row (`PROVENANCE`: the execution, lineage and message ids, the fetch time): an unchanged
page read again is not a change, and keeps the provenance of the export that first carried it.
Only the baseline's ids and row digests are held in memory, never its text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from resources.errors import FactflowError
from resources.storage import ObjectStore

from .schema import SCHEMAS, dataset_key

#: The changefeed's own column, first in every record.
OP = "op"
UPSERT = "upsert"
DELETE = "delete"


def open_dataset(store: ObjectStore, execution_id: str, what: str) -> pq.ParquetFile:
    key = dataset_key(execution_id, what)
    if not store.exists(key):
        raise FactflowError(f"execution {execution_id} has no {what} dataset (no {key}); materialise its dataset first")
    return pq.ParquetFile(store.open_read(key))


#: Columns that say which execution read a row, not what the row holds.
PROVENANCE = frozenset({"execution_id", "lineage_id", "message_id", "fetched_at"})


def row_digest(row: dict) -> str:
    """A digest of what a row holds (every column but the provenance ones)."""
    held = {key: value for key, value in row.items() if key not in PROVENANCE and key != OP}
    return hashlib.sha256(json.dumps(held, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def dataset_batches(
    store: ObjectStore, execution_id: str, what: str, include_duplicates: bool = False, batch_rows: int = 1000, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The dataset a batch at a time; rows of duplicate pages left out unless asked for."""
    wanted = None if columns is None else list(columns) + (["duplicate_of"] if not include_duplicates and "duplicate_of" not in columns else [])
    for batch in open_dataset(store, execution_id, what).iter_batches(batch_size=batch_rows, columns=wanted):
        if not include_duplicates and "duplicate_of" in batch.schema.names:
            batch = batch.filter(pc.is_null(batch.column("duplicate_of")))
            if columns is not None and "duplicate_of" not in columns:
                batch = batch.drop_columns(["duplicate_of"])
        if batch.num_rows:
            yield batch


def _ids_and_hashes(store: ObjectStore, execution_id: str, what: str, include_duplicates: bool) -> dict[str, str]:
    digests: dict[str, str] = {}
    for batch in dataset_batches(store, execution_id, what, include_duplicates):
        digests.update((row["id"], row_digest(row)) for row in batch.to_pylist())
    return digests


def change_counts(store: ObjectStore, baseline: str, execution_id: str, what: str) -> dict[str, int]:
    before = _ids_and_hashes(store, baseline, what, False)
    after = _ids_and_hashes(store, execution_id, what, False)
    changed = sum(1 for key, digest in after.items() if key in before and before[key] != digest)
    added = sum(1 for key in after if key not in before)
    return {"added": added, "changed": changed, "removed": sum(1 for key in before if key not in after), "unchanged": len(after) - added - changed}


def changefeed_schema(what: str) -> pa.Schema:
    schema = SCHEMAS[what]
    nullable = [field.with_nullable(True) if field.name != "id" else field for field in schema]
    return pa.schema([pa.field(OP, pa.string(), nullable=False), *nullable])


def changefeed(
    store: ObjectStore, baseline: str, execution_id: str, what: str, batch_rows: int = 1000, include_duplicates: bool = False
) -> Iterator[pa.RecordBatch]:
    """The records that take `baseline`'s dataset to `execution_id`'s, a batch at a time."""
    schema = changefeed_schema(what)
    before = _ids_and_hashes(store, baseline, what, include_duplicates)
    seen: set[str] = set()
    for batch in dataset_batches(store, execution_id, what, include_duplicates, batch_rows):
        rows = [row for row in batch.to_pylist() if before.get(row["id"]) != row_digest(row)]
        seen.update(batch.column("id").to_pylist())
        if rows:
            yield pa.RecordBatch.from_pylist([{OP: UPSERT, **row} for row in rows], schema=schema)
    gone = sorted(key for key in before if key not in seen)
    for start in range(0, len(gone), batch_rows):
        yield pa.RecordBatch.from_pylist([{OP: DELETE, "id": key} for key in gone[start : start + batch_rows]], schema=schema)
