"""Throughput at the limit: factflow against bare scripts and Scrapy on the same local site.

    .venv/bin/python benchmarks/throughput.py [--pages 1000] [--latency 0.05] [--large 10000]

On benchmarks/site.py (real articles, ~100 KB each, a sitemap index; every answer delayed by
`--latency`), prints, each beside its target:
  (a) the bare limit: a plain asyncio script that fetches every page with httpx (16 at a time)
      and extracts markdown with factflow's extractor in a 2-process pool: pages/s;
  (h) hand-written: what a user writes instead, httpx 32 at a time and trafilatura's fast markdown
      mode in a 2-process pool, nothing stored: pages/s;
  (p) the peer: Scrapy (SitemapSpider, robots.txt obeyed, trafilatura's fast mode in its callback,
      one process, 16 at a time; `pip install -e '.[benchmark]'`), benchmarks/scrapy_peer.py;
  (b) factflow end to end (sitemap → pages → markdown → segments, all stored, with lineage) as one
      `factflow execution start` process (benchmarks/pipelines/throughput.yaml: the shipped
      stages, 16 at a time, 2 extraction workers, no politeness limit): pages/s, b/a, b/h, b/p,
      each stage's span, and when the first markdown was stored after the command started;
  (c) factflow's fixed cost: wall time of a one-page execution through the CLI (median of 3);
  (d) peak RSS of (b)'s process tree, and of a `--large`-page run (0 skips it);
  (e) an in-place replay of (b) from web_content_storage (html_to_markdown and smart_segmenter
      again, from the stored pages): its wall time against the markdown route's span in (b), and
      requests to the site.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from benchmarks.processes import process_tree, pss_kib, rss_kib  # noqa: E402
from benchmarks.site import benchmark_site, load_articles  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"
PIPELINES = Path(__file__).resolve().parent / "pipelines"
CONCURRENCY = 16
HAND_WRITTEN_CONCURRENCY = 32
WORKERS = 2


# --- (a) the bare limit --------------------------------------------------------------------------

def bare_limit(sitemap_url: str) -> tuple[int, float]:
    """(pages, seconds) for fetch + extract of every page, no storage, no lineage."""
    import httpx

    from factflow_assets.adapters.documents import decode_html
    from factflow_assets.adapters.markdown_extraction import extract_markdown

    async def main() -> int:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(CONCURRENCY)
        with ProcessPoolExecutor(WORKERS) as pool:
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY), timeout=30) as client:
                index = (await client.get(sitemap_url)).text
                sitemaps = await asyncio.gather(*(client.get(loc) for loc in _locs(index)))
                urls = [url for sitemap in sitemaps for url in _locs(sitemap.text)]

                async def one(url: str) -> None:
                    async with limit:
                        response = await client.get(url)
                    html = decode_html(response.content, response.headers.get("content-type", ""))
                    await loop.run_in_executor(pool, extract_markdown, html, url)

                await asyncio.gather(*(one(url) for url in urls))
                return len(urls)

    started = time.perf_counter()
    pages = asyncio.run(main())
    return pages, time.perf_counter() - started


def hand_written(sitemap_url: str) -> tuple[int, float]:
    """(pages, seconds) for what a user writes by hand: httpx 32 at a time, trafilatura's fast
    markdown mode in a 2-process pool, nothing stored."""
    import httpx

    async def main() -> int:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(HAND_WRITTEN_CONCURRENCY)
        with ProcessPoolExecutor(WORKERS) as pool:
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=HAND_WRITTEN_CONCURRENCY), timeout=30) as client:
                index = (await client.get(sitemap_url)).text
                sitemaps = await asyncio.gather(*(client.get(loc) for loc in _locs(index)))
                urls = [url for sitemap in sitemaps for url in _locs(sitemap.text)]

                async def one(url: str) -> None:
                    async with limit:
                        response = await client.get(url)
                    await loop.run_in_executor(pool, trafilatura_fast, response.text, url)

                await asyncio.gather(*(one(url) for url in urls))
                return len(urls)

    started = time.perf_counter()
    pages = asyncio.run(main())
    return pages, time.perf_counter() - started


def trafilatura_fast(html: str, url: str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, url=url, output_format="markdown", fast=True, include_links=True)


def scrapy_peer(sitemap_url: str) -> tuple[int, float] | None:
    """(pages, seconds) of benchmarks/scrapy_peer.py, or None when Scrapy is not installed."""
    try:
        import scrapy  # noqa: F401
    except ImportError:
        return None
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("scrapy_peer.py")), sitemap_url], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"scrapy_peer.py failed: {done.stderr[-2000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["pages"], answer["seconds"]


def _locs(xml: str) -> list[str]:
    return re.findall(r"<loc>\s*([^<\s]+)\s*</loc>", xml)


# --- (b), (c), (d), (e) factflow ---------------------------------------------------------------------

class PeakRss:
    """Samples the summed RSS of a process and its descendants (the extraction workers) every 0.1 s;
    with `proportional`, the summed PSS instead (shared pages counted once across the tree)."""

    def __init__(self, pid: int, proportional: bool = False):
        self.pid, self.peak_kib = pid, 0
        self._measure = pss_kib if proportional else rss_kib
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.1):
            self.peak_kib = max(self.peak_kib, sum(self._measure(pid) for pid in process_tree(self.pid)))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_kib / 1024


def factflow(env: dict, *args: str, proportional: bool = False) -> tuple[float, dict, float]:
    """(wall seconds, JSON answer, peak RSS MiB, or PSS with `proportional`) of one factflow command."""
    started = time.perf_counter()
    process = subprocess.Popen([str(FACTFLOW), *args, "--output", "json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = PeakRss(process.pid, proportional)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    peak = rss.stop()
    if process.returncode != 0:
        raise SystemExit(f"factflow {' '.join(args)} failed ({process.returncode}): {err.strip()[-2000:] or out[-2000:]}")
    return wall, json.loads(out), peak


def fresh_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTFLOW_") and k != "DAGSTER_HOME"}
    return {**env, "FACTFLOW_HOME": home, "FACTFLOW_PIPELINES_DIR": str(PIPELINES)}


def run_factflow(env: dict, sitemap_url: str) -> tuple[float, dict, float]:
    return factflow(env, "execution", "start", "throughput", "--set", f"sitemap_url={sitemap_url}")


def stage_spans(home: str, execution_id: str | None = None) -> dict[str, float]:
    """First start to last finish of each stage's current lineage rows (the fresh home's SQLite
    database; of one execution, or of all), in the order the stages started: with streaming,
    they overlap."""
    query = (
        "SELECT stage, (julianday(MAX(finished_at)) - julianday(MIN(started_at))) * 86400 FROM factflow_lineage "
        "WHERE NOT superseded AND (? IS NULL OR execution_id = ?) GROUP BY stage ORDER BY MIN(started_at)"
    )
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        return dict(db.execute(query, (execution_id, execution_id)).fetchall())


def markdown_span(home: str) -> float:
    """First start to last finish of the markdown route's current rows (html_to_markdown and
    smart_segmenter together)."""
    query = (
        "SELECT (julianday(MAX(finished_at)) - julianday(MIN(started_at))) * 86400 FROM factflow_lineage "
        "WHERE NOT superseded AND stage IN ('html_to_markdown', 'smart_segmenter')"
    )
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        return db.execute(query).fetchone()[0]


def first_markdown_at(home: str) -> float:
    """Unix time at which the first page's markdown was stored."""
    query = "SELECT MIN(finished_at) FROM factflow_lineage WHERE stage = 'html_to_markdown' AND status = 'completed'"
    with closing(sqlite3.connect(Path(home) / "factflow.db")) as db:
        text = db.execute(query).fetchone()[0]
    from datetime import datetime

    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def spans_text(spans: dict[str, float]) -> str:
    return ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in spans.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer of the site")
    parser.add_argument("--large", type=int, default=10000, help="pages of the RSS run (0: skip)")
    args = parser.parse_args()
    articles = load_articles()

    with benchmark_site(args.pages, args.latency, articles) as site:
        sitemap = site.url("/sitemap_index.xml")
        pages, seconds = bare_limit(sitemap)
        bare_rate = pages / seconds
        print(f"(a) bare limit, factflow's extractor: {pages} pages in {seconds:.1f} s = {bare_rate:.1f} pages/s")
        pages, seconds = hand_written(sitemap)
        hand_rate = pages / seconds
        print(f"(h) hand-written, httpx + trafilatura fast: {pages} pages in {seconds:.1f} s = {hand_rate:.1f} pages/s")
        peer = scrapy_peer(sitemap)
        peer_rate = peer[0] / peer[1] if peer else None
        if peer:
            print(f"(p) Scrapy + trafilatura fast: {peer[0]} pages in {peer[1]:.1f} s = {peer_rate:.1f} pages/s")
        else:
            print("(p) Scrapy: not installed (pip install -e '.[benchmark]')")

        with tempfile.TemporaryDirectory() as home:
            env = fresh_env(home)
            started = time.time()
            wall, summary, peak = run_factflow(env, sitemap)
            stored = {s["stage"]: s["completed"] for s in summary["stages"]}
            rate = stored["html_to_markdown"] / wall
            print(f"(b) factflow: {stored['html_to_markdown']} pages to markdown, {stored['smart_segmenter']} segmented, in {wall:.1f} s wall "
                  f"(execution {summary['duration_s']:.1f} s) = {rate:.1f} pages/s")
            print(f"    b/a = {rate / bare_rate:.2f} (target >= 0.8), b/h = {rate / hand_rate:.2f} (target >= 0.65)"
                  + (f", b/p = {rate / peer_rate:.2f} (target >= 1.2)" if peer_rate else ""))
            print(f"    first markdown stored {first_markdown_at(home) - started:.1f} s after the command started (target <= 3 s)")
            spans = stage_spans(home)
            full_markdown = markdown_span(home)
            print(f"    stages: {spans_text(spans)}")
            print(f"(d) peak RSS of (b): {peak:.0f} MiB")
            before = site.total_requests()
            replay_wall, _replayed, _ = factflow(env, "execution", "replay", summary["id"], "--from-stage", "web_content_storage")
            print(f"(e) replay from web_content_storage: {replay_wall:.1f} s wall = {replay_wall / full_markdown:.2f} of the markdown route's "
                  f"{full_markdown:.1f} s span in (b) (target <= 1.1); {site.total_requests() - before} requests to the site")
            print(f"    stages: {spans_text(stage_spans(home))}")

    with benchmark_site(1, 0.0, articles) as site, tempfile.TemporaryDirectory() as home:
        env = fresh_env(home)
        walls = [run_factflow(env, site.url("/sitemap_index.xml"))[0] for _ in range(3)]
        print(f"(c) fixed cost: a one-page execution {statistics.median(walls):.2f} s wall (median of 3: "
              f"{', '.join(f'{w:.2f}' for w in walls)}; target <= 2.0 s)")

    if args.large:
        with benchmark_site(args.large, 0.0, articles) as site, tempfile.TemporaryDirectory() as home:
            wall, summary, large_peak = run_factflow(fresh_env(home), site.url("/sitemap_index.xml"))
            done = {s["stage"]: s["completed"] for s in summary["stages"]}["html_to_markdown"]
            print(f"(d) {args.large}-page run: {done} pages in {wall:.0f} s = {done / wall:.1f} pages/s; peak RSS {large_peak:.0f} MiB "
                  f"(target <= 1024 MiB and flat: {peak:.0f} MiB at {args.pages})")


if __name__ == "__main__":
    main()
