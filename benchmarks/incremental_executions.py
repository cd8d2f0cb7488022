"""Incremental re-crawls: a first crawl, then re-crawls with none and 5 % of the pages changed.

    .venv/bin/python benchmarks/incremental_executions.py [--pages 1000] [--latency 0.05] [--changed 0.05]

On benchmarks/site.py (real articles, every answer delayed by `--latency`; pages carry an ETag and
answer 304 to a request naming it), the shipped stages at benchmark settings
(benchmarks/pipelines/throughput.yaml) run as `factflow execution start` processes in one fresh
home: a first crawl, a re-crawl `--since latest` with nothing changed, and one after `--changed`
of the pages were edited. Prints each one's wall time, the re-crawl ÷ first crawl ratio beside
its target, the pages extracted again (html_to_markdown rows that ran, not carried) against the
pages changed, and the page bytes the site sent.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.site import benchmark_site, load_articles  # noqa: E402
from benchmarks.throughput import factflow, fresh_env, spans_text, stage_spans  # noqa: E402

TARGETS = {0.0: 0.25, 0.05: 0.35}


def extracted(home: str, execution_id: str) -> tuple[int, int]:
    """(html_to_markdown rows that ran, rows carried over) of one execution."""
    query = "SELECT status, COUNT(*) FROM factflow_lineage WHERE execution_id = ? AND stage = 'html_to_markdown' AND NOT superseded GROUP BY status"
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        counts = dict(db.execute(query, (execution_id,)).fetchall())
    return counts.get("completed", 0), counts.get("unchanged", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer of the site")
    parser.add_argument("--changed", type=float, default=0.05, help="share of the pages edited before the last re-crawl")
    args = parser.parse_args()
    changed: set[int] = set()
    with tempfile.TemporaryDirectory() as home, benchmark_site(args.pages, args.latency, load_articles(), etags=True, changed=changed) as site:
        env = fresh_env(home)
        start = ["execution", "start", "throughput", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}"]
        sent = site.served_bytes[0]
        first_wall, first, _ = factflow(env, *start)
        first_bytes, sent = site.served_bytes[0] - sent, site.served_bytes[0]
        ran, _carried = extracted(home, first["execution_id"])
        print(f"first crawl: {args.pages} pages in {first_wall:.1f} s wall; {ran} extracted; {first_bytes / 2**20:.1f} MiB of pages sent")
        print(f"    stages: {spans_text(stage_spans(home, first['execution_id']))}")
        for share in (0.0, args.changed):
            changed.update(random.Random(7).sample(range(args.pages), round(share * args.pages)))
            wall, answer, _ = factflow(env, *start, "--since", "latest")
            sent_now, sent = site.served_bytes[0] - sent, site.served_bytes[0]
            ran, carried = extracted(home, answer["execution_id"])
            target = TARGETS.get(share)
            beside = f" (target <= {target})" if target is not None else ""
            print(
                f"re-crawl, {share:.0%} changed ({len(changed)} pages): {wall:.1f} s wall = {wall / first_wall:.2f} of the first{beside}; "
                f"{ran} extracted again (pages changed: {len(changed)}), {carried} carried over; {sent_now / 2**20:.2f} MiB of pages sent"
            )
            print(f"    stages: {spans_text(stage_spans(home, answer['execution_id']))}")


if __name__ == "__main__":
    main()
