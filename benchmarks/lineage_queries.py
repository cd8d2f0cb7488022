"""Latency of the operator's lineage queries on a million lineage rows.

    .venv/bin/python benchmarks/lineage_queries.py [--rows 1000000] [--executions 1000]
        [--db /tmp/lineage-1m.db] [--database-url postgresql+psycopg2://…] [--picks 50]

Fills the factflow lineage table (the real schema and indexes) with executions shaped like the
shipped pipeline: init → url_expander → web_scraper fanning out to a page per URL (4 % fail) →
web_content_storage → html_to_markdown → smart_segmenter, execution sizes drawn from a heavy-tailed
distribution (a few executions are much larger than the rest). Then it times each query the CLI
runs, through the same `LineageQueries` methods, on `--picks` random rows or executions, and prints
the median and p95 against the targets of issue 4. A `--db` file that already holds the rows is
reused, so a second run skips the fill.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select  # noqa: E402

from factflow_assets.ids import new_batch_id, new_execution_id, new_lineage_id  # noqa: E402
from resources.database import FactflowDatabase  # noqa: E402
from resources.db_schema import configs, lineage  # noqa: E402
from resources.db_schema import executions as executions_table  # noqa: E402

#: Median latency targets in milliseconds (issue 4), per query.
TARGETS = {
    "chain (segment: 5 ancestors)": 20,
    "chain (page: 2 up, 3 down)": 20,
    "children (url list: fan-out)": 20,
    "children (page)": 20,
    "failures of one execution": 100,
    "stats of one execution": 500,
    "stats of the largest execution": 500,
}
FAILURE_RATE = 0.04
TRACEBACK = "Traceback (most recent call last):\n" + '  File "factflow_assets/adapters/web_scraper.py", line 120, in process\n' * 12
INSERT_CHUNK = 20_000


def execution_sizes(rows: int, executions: int, rng: random.Random) -> list[int]:
    """Pages per execution, heavy-tailed, so that all executions together make about `rows` rows
    (each page makes about 3.9 rows: fetched, stored, markdown, segmented, 4 % failing)."""
    weights = [min(rng.paretovariate(1.2), 200.0) for _ in range(executions)]
    pages_total = (rows - 2 * executions) / (1 + 3 * (1 - FAILURE_RATE))
    return [max(1, round(w / sum(weights) * pages_total)) for w in weights]


def execution_rows(pages: int, rng: random.Random, start: datetime):
    """Every lineage row of one execution, parents before children."""
    execution_id, config_hash = new_execution_id(), hashlib.sha256(str(pages).encode()).hexdigest()
    clock = [start]
    batches = {
        stage: new_batch_id() for stage in ("sitemap_parser", "url_expander", "web_scraper", "web_content_storage", "html_to_markdown", "smart_segmenter")
    }

    def make(route, stage, message_id, parent, status="completed", outputs=(), url=None, duration=None):
        clock[0] += timedelta(milliseconds=rng.randint(1, 20))
        ms = duration if duration is not None else rng.lognormvariate(2.5, 1.0)
        failed = status == "failed"
        return {
            "id": new_lineage_id(),
            "execution_id": execution_id,
            "route": route,
            "stage": stage,
            "adapter_type": stage,
            "message_id": message_id,
            "parent_lineage_id": parent,
            "batch_id": batches[stage],
            "status": status,
            "input_hash": hashlib.sha256(message_id.encode()).hexdigest(),
            "output_hash": None if failed else hashlib.sha256(b"o" + message_id.encode()).hexdigest(),
            "output_keys": [f"executions/{execution_id}/{route}/{stage}/{key}" for key in outputs],
            "error_class": "HttpStatusError" if failed else None,
            "error_message": f"HTTP 404 Not Found for {url}" if failed else None,
            "error_traceback": TRACEBACK if failed else None,
            "started_at": clock[0],
            "finished_at": clock[0] + timedelta(milliseconds=ms),
            "duration_ms": round(ms, 2),
            "dagster_run_id": "run-" + execution_id,
            "attempt": 1,
            "config_hash": config_hash,
            "superseded": False,
            "metadata": {"url": url} if url else {},
        }

    def mid(slug: str) -> str:
        return f"{slug}-{rng.getrandbits(64):016x}"

    site = f"https://site{rng.randint(1, 50)}.example"
    urls = [f"{site}/docs/page-{i}.html" for i in range(pages)]
    url_ids = [mid(f"docs-page-{i}") for i in range(pages)]
    init = make("sitemap_scraper", "sitemap_parser", mid("init"), None, outputs=[mid("sitemap")], url=f"{site}/sitemap.xml")
    expand = make("sitemap_scraper", "url_expander", init["output_keys"][0].rsplit("/", 1)[1], init["id"], outputs=url_ids, url=f"{site}/sitemap.xml")
    yield init
    yield expand
    for url, url_id in zip(urls, url_ids):
        failed = rng.random() < FAILURE_RATE
        fetched_id, stored_id, markdown_id = mid("f"), mid("s"), mid("m")
        scrape = make("sitemap_scraper", "web_scraper", url_id, expand["id"], "failed" if failed else "completed", () if failed else [fetched_id], url)
        yield scrape
        if failed:
            continue
        store = make("sitemap_scraper", "web_content_storage", fetched_id, scrape["id"], outputs=[stored_id], url=url)
        markdown = make("markdown_processor", "html_to_markdown", stored_id, store["id"], outputs=[markdown_id], url=url)
        segments = [f"{markdown_id}-{i:03d}" for i in range(rng.randint(1, 6))]
        yield store
        yield markdown
        yield make("markdown_processor", "smart_segmenter", markdown_id, markdown["id"], outputs=segments, url=url)


BENCH_CONFIG = "0" * 64


def execution_record(execution_id: str, created_at: datetime) -> dict:
    return {
        "id": execution_id,
        "pipeline": "bench",
        "status": "completed",
        "config_hash": BENCH_CONFIG,
        "init_route": "sitemap_scraper",
        "init_payload": {},
        "overrides": {},
        "origin": {"kind": "start"},
        "created_at": created_at,
    }


def fill(db: FactflowDatabase, rows: int, executions: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    chunk: list[dict] = []
    written, began = 0, time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(insert(configs).values(config_hash=BENCH_CONFIG, pipeline="bench", yaml="version: 1", created_at=start))
        seen: set[str] = set()
        for n, pages in enumerate(execution_sizes(rows, executions, rng)):
            for row in execution_rows(pages, rng, start + timedelta(hours=n)):
                if row["execution_id"] not in seen:  # the database refuses rows of an unknown execution
                    seen.add(row["execution_id"])
                    conn.execute(insert(executions_table).values(execution_record(row["execution_id"], start + timedelta(hours=n))))
                chunk.append(row)
                if len(chunk) >= INSERT_CHUNK:
                    conn.execute(insert(lineage), chunk)
                    written += len(chunk)
                    chunk = []
                    print(f"\r  {written:,} rows, {time.perf_counter() - began:.0f} s", end="", file=sys.stderr)
        if chunk:
            conn.execute(insert(lineage), chunk)
            written += len(chunk)
    print(f"\r  {written:,} rows written in {time.perf_counter() - began:.0f} s", file=sys.stderr)


def timed(call, picks: list) -> list[float]:
    times = []
    for pick in picks:
        began = time.perf_counter()
        call(pick)
        times.append((time.perf_counter() - began) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/factflow-lineage-bench.db"), help="SQLite file (kept for reuse)")
    parser.add_argument("--database-url", help="Any SQLAlchemy URL instead of --db (e.g. PostgreSQL)")
    parser.add_argument("--picks", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    url = args.database_url or f"sqlite:///{args.db}"
    db = FactflowDatabase(url)
    with db.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(lineage)).scalar_one()
    if present < args.rows * 0.95:
        if present:
            sys.exit(f"{url} holds {present:,} rows, not about {args.rows:,}: delete it or pick another --db")
        print(f"filling {url} with about {args.rows:,} lineage rows in {args.executions:,} executions", file=sys.stderr)
        fill(db, args.rows, args.executions, args.seed)
    with db.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(lineage)).scalar_one()
        sizes = conn.execute(select(lineage.c.execution_id, func.count()).group_by(lineage.c.execution_id)).all()

    rng = random.Random(args.seed + 1)
    executions = [e for e, _ in sizes]
    largest_id, largest = max(sizes, key=lambda s: s[1])
    picked = rng.sample(executions, min(args.picks, len(executions)))

    def one_of(stage: str, column=lineage.c.id) -> list[str]:
        """`column` of a row of `stage` from each picked execution that has one."""
        with db.engine.connect() as conn:
            found = [conn.execute(select(column).where(lineage.c.execution_id == e, lineage.c.stage == stage).limit(1)).scalar() for e in picked]
        return [value for value in found if value is not None]

    queries = db.lineage_queries
    measured = {
        "chain (segment: 5 ancestors)": timed(queries.chain, one_of("smart_segmenter")),
        "chain (page: 2 up, 3 down)": timed(queries.chain, one_of("web_scraper")),
        "children (url list: fan-out)": timed(queries.children, one_of("url_expander")),
        "children (page)": timed(queries.children, one_of("web_scraper")),
        "failures of one execution": timed(queries.failures, picked),
        "failures of all (newest 50)": timed(lambda _: queries.failures(), picked),
        "stats of one execution": timed(queries.stats, picked),
        "stats of the largest execution": timed(queries.stats, [largest_id] * min(args.picks, 10)),
        "list, first 100 rows": timed(lambda e: queries.rows(e, limit=100), picked),
        "resolve a message id": timed(queries.resolve, one_of("html_to_markdown", lineage.c.message_id)),
        "resolve an unknown id (full scan)": timed(lambda _: _unknown(queries), range(3)),
    }

    rows_per = sorted(n for _, n in sizes)
    print(
        f"{present:,} lineage rows in {len(sizes):,} executions on {db.engine.dialect.name} "
        f"(rows per execution: median {rows_per[len(rows_per) // 2]:,}, largest {largest:,})"
    )
    print(f"{'query':34} {'median ms':>10} {'p95 ms':>9} {'target':>8}")
    for name, times in measured.items():
        median = statistics.median(times)
        p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
        target = TARGETS.get(name)
        verdict = "" if target is None else f"< {target}" + ("" if median < target else "  MISSED")
        print(f"{name:34} {median:10.2f} {p95:9.2f} {verdict:>8}")


def _unknown(queries) -> None:
    try:
        queries.resolve("no-such-message-0123456789abcdef")
    except Exception:  # NotFoundError is the expected outcome
        pass


if __name__ == "__main__":
    main()
