"""The operator's lineage queries on SQLite and PostgreSQL, over a small known lineage tree.

e1: init → expand → scrape a (completed) → store a → markdown a → segment a (two outputs)
                  ↘ scrape b (failed)
e2: scrape a again (the same message id in another execution), failed.
"""

from datetime import timedelta

import pytest

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import NotFoundError
from resources.lineage_queries import AmbiguousIdError
from tests.conftest import executions_exist
from tests.test_database import lineage_row

T0 = utcnow()


def row(row_id, stage, message_id, parent, *, execution="e1", second=0, duration=None, status="completed", **extra):
    route = "md" if stage in ("markdown", "segment") else "scrape"
    return lineage_row(
        row_id, message_id, execution_id=execution, route=route, stage=stage, adapter_type=f"{stage}_adapter",
        parent_lineage_id=parent, status=status, started_at=T0 + timedelta(seconds=second),
        finished_at=T0 + timedelta(seconds=second + 1), duration_ms=duration, batch_id=f"batch-{stage}", **extra,
    )


TREE = [
    row("init", "init", "init-m", None, second=0, duration=5.0),
    row("expand", "expand", "list-m", "init", second=1, duration=7.0, output_keys=["executions/e1/scrape/expand/a-m", "executions/e1/scrape/expand/b-m"]),
    row("scrape-a", "scrape", "a-m", "expand", second=2, duration=10.0, metadata={"url": "http://site/a"}),
    row("scrape-b", "scrape", "b-m", "expand", second=3, duration=30.0, status="failed", error_class="HttpStatusError", error_message="HTTP 404"),
    row("scrape-a-old", "scrape", "a-m", "expand", second=2, duration=99.0, superseded=True),
    row("store-a", "store", "page-a", "scrape-a", second=4, duration=2.0),
    row("md-a", "markdown", "stored-a", "store-a", second=5, duration=40.0),
    row("seg-a", "segment", "md-a-m", "md-a", second=6, duration=3.0,
        output_keys=["executions/e1/md/segment/a-000-x", "executions/e1/md/segment/a-001-y"]),
    row("e2-scrape-a", "scrape", "a-m", None, execution="e2", second=10, duration=12.0, status="failed", error_class="Timeout", error_message="slow"),
]


@pytest.fixture
def queries(database_url):
    db = FactflowDatabase(database_url)
    executions_exist(db, "e1", "e2")
    writer = db.lineage.writer()
    for item in TREE:
        writer.start(item)
    writer.close()
    return db.lineage_queries


def test_chain_walks_ancestors_and_descendants_of_one_branch(queries):
    chain = queries.chain("store-a")
    assert [(r["id"], r["depth"]) for r in chain] == [
        ("init", -3), ("expand", -2), ("scrape-a", -1), ("store-a", 0), ("md-a", 1), ("seg-a", 2),
    ]
    from_expand = queries.chain("expand")
    assert {r["id"] for r in from_expand if r["depth"] == 1} == {"scrape-a", "scrape-b", "scrape-a-old"}
    assert [r["id"] for r in queries.chain("expand", max_descendants=3)] == ["init", "expand", "scrape-a", "scrape-a-old", "scrape-b"]
    with pytest.raises(NotFoundError):
        queries.chain("nope")


def test_children_are_the_direct_consumers(queries):
    assert [r["id"] for r in queries.children("expand")] == ["scrape-a", "scrape-a-old", "scrape-b"]
    assert queries.children("seg-a") == []
    assert "error_traceback" not in queries.children("expand")[0]


def test_failures_of_one_execution_oldest_first_and_of_all_newest_first(queries):
    assert [r["id"] for r in queries.failures("e1")] == ["scrape-b"]
    assert [r["id"] for r in queries.failures()] == ["e2-scrape-a", "scrape-b"]
    assert [r["id"] for r in queries.failures(limit=1)] == ["e2-scrape-a"]
    assert queries.failures("e1")[0]["error_message"] == "HTTP 404"


def test_list_filters_pages_and_leaves_superseded_rows_out_unless_asked(queries):
    assert [r["id"] for r in queries.rows("e1", limit=3)] == ["init", "expand", "scrape-a"]
    assert [r["id"] for r in queries.rows("e1", limit=3, offset=3)] == ["scrape-b", "store-a", "md-a"]
    assert [r["id"] for r in queries.rows("e1", status="failed")] == ["scrape-b"]
    assert [r["id"] for r in queries.rows("e1", route="md")] == ["md-a", "seg-a"]
    assert [r["id"] for r in queries.rows("e1", adapter_type="scrape_adapter")] == ["scrape-a", "scrape-b"]
    assert "scrape-a-old" in {r["id"] for r in queries.rows("e1", include_superseded=True)}
    assert queries.rows("e1")[0]["started_at"].tzinfo is not None


def test_batch_lists_one_stage_run(queries):
    assert [r["id"] for r in queries.batch("batch-scrape")] == ["scrape-a", "scrape-a-old", "scrape-b", "e2-scrape-a"]
    assert queries.batch("nope") == []


def test_stats_count_by_status_with_nearest_rank_percentiles(queries):
    stats = {r["stage"]: r for r in queries.stats("e1")}
    assert list(stats) == ["init", "expand", "scrape", "store", "markdown", "segment"]  # in the order they ran
    scrape = stats["scrape"]
    assert (scrape["count"], scrape["completed"], scrape["failed"], scrape["skipped"], scrape["pending"]) == (2, 1, 1, 0, 0)
    assert (scrape["p50_ms"], scrape["p95_ms"], scrape["max_ms"], scrape["mean_ms"]) == (10.0, 30.0, 30.0, 20.0)
    assert scrape["total_ms"] == 40.0 and scrape["span_s"] == 2.0  # first start at 2 s, last finish at 4 s
    assert scrape["route"] == "scrape" and scrape["adapter_type"] == "scrape_adapter"
    assert queries.stats("nope") == []


def test_resolve_takes_a_lineage_id_or_an_unambiguous_message_id(queries):
    assert queries.resolve("md-a")["id"] == "md-a"
    assert queries.resolve("page-a")["id"] == "store-a"  # the invocation that took it as input
    with pytest.raises(AmbiguousIdError, match="names 2 invocations.*--execution"):
        queries.resolve("a-m")  # in e1 and e2
    assert queries.resolve("a-m", execution_id="e1")["id"] == "scrape-a"  # not the superseded attempt
    assert queries.resolve("a-001-y")["id"] == "seg-a"  # a final output: the invocation that wrote it
    with pytest.raises(NotFoundError, match="no lineage row or message 'nope'"):
        queries.resolve("nope")
    with pytest.raises(NotFoundError, match="in execution e2"):
        queries.resolve("md-a", execution_id="e2")
    with pytest.raises(NotFoundError):
        queries.resolve("a-%")  # LIKE wildcards are matched literally


def test_a_chain_deeper_than_any_pipeline_so_far_is_walked_whole(database_url):
    """Twenty generations (a pipeline of twenty stages): every ancestor and descendant comes back."""
    db = FactflowDatabase(database_url)
    executions_exist(db, "deep")
    writer = db.lineage.writer()
    for n in range(20):
        writer.start(row(f"g{n:02d}", f"s{n}", f"m{n}", f"g{n - 1:02d}" if n else None, execution="deep", second=n))
    writer.close()
    chain = db.lineage_queries.chain("g10")
    assert [r["id"] for r in chain] == [f"g{n:02d}" for n in range(20)]
    assert [r["depth"] for r in chain] == list(range(-10, 10))


def test_a_cycle_in_the_parents_ends_the_walk_instead_of_looping(database_url):
    """Rows whose parents run in a circle (a corrupt database): the chain stops at its depth cap."""
    from sqlalchemy import update

    from resources.db_schema import lineage
    from resources.lineage_queries import MAX_CHAIN_DEPTH

    db = FactflowDatabase(database_url)
    executions_exist(db, "loop")
    writer = db.lineage.writer()
    writer.start(row("c1", "s1", "m1", None, execution="loop", second=1))
    writer.start(row("c2", "s2", "m2", "c1", execution="loop", second=2))
    writer.close()
    with db.engine.begin() as conn:
        conn.execute(update(lineage).where(lineage.c.id == "c1").values(parent_lineage_id="c2"))
    chain = db.lineage_queries.chain("c1")
    assert {r["id"] for r in chain} == {"c1", "c2"}
    assert min(r["depth"] for r in chain) >= -MAX_CHAIN_DEPTH and max(r["depth"] for r in chain) <= MAX_CHAIN_DEPTH
