"""A user's own asset on factflow's dataset: a SQLite FTS5 search index of the newest crawl.

Load it beside factflow's code location (workspace.yaml in this folder, `dagster dev -w
examples/workspace.yaml`): after each execution of the pipeline, its eager automation condition
has the daemon build the index from that execution's segments, with nobody asking.

    SEARCH_INDEX_PIPELINE   the pipeline whose dataset it reads (default web_to_markdown)
    SEARCH_INDEX_PATH       the SQLite file (default $FACTFLOW_HOME/search.db)

Query it with `sqlite3 search.db "SELECT url, heading FROM segments WHERE segments MATCH 'retention' ORDER BY rank"`.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at definition time.

import os
import sqlite3
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
)

from factflow_assets.dataset import iter_dataset

PIPELINE = os.environ.get("SEARCH_INDEX_PIPELINE", "web_to_markdown")


def index_path() -> Path:
    default = Path(os.environ.get("FACTFLOW_HOME", Path.home() / ".factflow")) / "search.db"
    return Path(os.environ.get("SEARCH_INDEX_PATH", default))


@asset(
    key=AssetKey([PIPELINE, "search_index"]),
    deps=[AssetKey([PIPELINE, "dataset"])],
    partitions_def=DynamicPartitionsDefinition(name=PIPELINE),  # factflow's executions
    automation_condition=AutomationCondition.eager(),
    kinds={"sqlite"},
)
def search_index(context: AssetExecutionContext) -> MaterializeResult:
    """The execution's segments in an FTS5 table, replacing the previous crawl's."""
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with sqlite3.connect(path) as db:
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS segments USING fts5(id UNINDEXED, url UNINDEXED, execution UNINDEXED, title, heading, text)")
        db.execute("DELETE FROM segments")
        for batch in iter_dataset(context.partition_key, "segments", columns=["id", "url", "execution_id", "title", "heading_path", "text"]):
            records = [(r["id"], r["url"], r["execution_id"], r["title"], " > ".join(r["heading_path"]), r["text"]) for r in batch.to_pylist()]
            db.executemany("INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?)", records)
            rows += len(records)
    return MaterializeResult(metadata={"segments": rows, "path": str(path)})


defs = Definitions(
    assets=[search_index],
    sensors=[
        AutomationConditionSensorDefinition(
            "search_index_automation",
            target=AssetSelection.assets(search_index),
            default_status=DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=int(os.environ.get("SEARCH_INDEX_EVERY_SECONDS", "30")),
        )
    ],
)
