"""Throughput at the limit: factflow against bare scripts and Scrapy on the same local site.

    .venv/bin/python benchmarks/throughput.py [--pages 1000] [--latency 0.05] [--large 10000]

On benchmarks/site.py (real pages served in turn from a local server, a sitemap index; every answer
delayed by `--latency`), prints, each beside its target:
  (a) the bare limit: a plain asyncio script that fetches every page with httpx (16 at a time)
      and extracts markdown with factflow's extractor in a 2-process pool: pages/s;
  (h) hand-written, another extractor: httpx 32 at a time and trafilatura's fast markdown mode in a
      2-process pool, nothing stored: pages/s;
  (s) the same job, hand-written: what a user who skips factflow still has to do: httpx 16 at a
      time, factflow's extractor and segmenter in a 2-process pool, the markdown and the segments
      written to files, no lineage: pages/s;
  (p) the peer: Scrapy (SitemapSpider, robots.txt obeyed, trafilatura's fast mode in its callback,
      one process, 16 at a time; `pip install -e '.[benchmark]'`), benchmarks/scrapy_peer.py;
  (b) factflow end to end (sitemap → pages → markdown → segments, all stored, with lineage) as one
      `factflow execution start` process (benchmarks/pipelines/throughput.yaml: the shipped
      stages, 16 at a time, 2 extraction workers, no politeness limit): pages/s, b/p, b/s (and
      b/a, b/h), each stage's span, and when the first markdown was stored after the command started;
  (c) factflow's fixed cost: wall time of a one-page execution through the CLI (median of 3);
  (d) peak RSS of (b)'s process tree, and of a `--large`-page run (0 skips it);
  (e) an in-place replay of (b) from web_content_storage (html_to_markdown and smart_segmenter
      again, from the stored pages): its wall time against the markdown route's span in (b), and
      requests to the site.
(a), (h), (s), (p), (b) and (e) run on the articles of aeb-dev at `--latency`; (s), (p) and (b)
again with no latency, and on the pages of docs-dev (four documentation sites) at `--latency`.
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datetime import UTC

from benchmarks.processes import process_tree, pss_kib, rss_kib  # noqa: E402
from benchmarks.site import benchmark_site, load_articles, load_docs_pages  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"
PIPELINES = Path(__file__).resolve().parent / "pipelines"
CONCURRENCY = 16
HAND_WRITTEN_CONCURRENCY = 32
WORKERS = 2


# --- (a), (h), (s): plain scripts -------------------------------------------------------------------

def scripted(sitemap_url: str, concurrency: int, page: Callable[..., Awaitable[None]]) -> tuple[int, float]:
    """(pages, seconds) of a plain asyncio script over the site: its sitemap index and sitemaps read
    with httpx, every URL fetched `concurrency` at a time and handed on as
    `await page(response, url, number, in_pool)`, where `in_pool(fn, *args)` runs `fn` in a
    2-process pool."""
    import httpx

    async def main() -> int:
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(concurrency)
        with ProcessPoolExecutor(WORKERS) as pool:
            def in_pool(fn: Callable, *args: Any) -> Awaitable[Any]:
                return loop.run_in_executor(pool, fn, *args)

            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency), timeout=30) as client:
                index = (await client.get(sitemap_url)).text
                sitemaps = await asyncio.gather(*(client.get(loc) for loc in _locs(index)))
                urls = [url for sitemap in sitemaps for url in _locs(sitemap.text)]

                async def one(number: int, url: str) -> None:
                    async with limit:
                        response = await client.get(url)
                    await page(response, url, number, in_pool)

                await asyncio.gather(*(one(number, url) for number, url in enumerate(urls)))
                return len(urls)

    started = time.perf_counter()
    pages = asyncio.run(main())
    return pages, time.perf_counter() - started


def bare_limit(sitemap_url: str) -> tuple[int, float]:
    """(pages, seconds) for fetch + extract of every page (httpx 16 at a time, factflow's
    extractor), no storage, no lineage."""
    from factflow_assets.extraction.documents import decode_html
    from factflow_assets.extraction.markdown_extraction import extract_markdown

    async def page(response, url: str, _number: int, in_pool) -> None:
        await in_pool(extract_markdown, decode_html(response.content, response.headers.get("content-type", "")), url)

    return scripted(sitemap_url, CONCURRENCY, page)


def hand_written(sitemap_url: str) -> tuple[int, float]:
    """(pages, seconds) for what a user writes by hand: httpx 32 at a time, trafilatura's fast
    markdown mode in a 2-process pool, nothing stored."""

    async def page(response, url: str, _number: int, in_pool) -> None:
        await in_pool(trafilatura_fast, response.text, url)

    return scripted(sitemap_url, HAND_WRITTEN_CONCURRENCY, page)


def same_job(sitemap_url: str) -> tuple[int, float]:
    """(pages, seconds) for the same job written by hand: httpx 16 at a time, factflow's extractor
    and segmenter in a 2-process pool, each page's markdown and segments written to files (into a
    temporary folder, removed after), no lineage, no sidecars, no resuming."""
    from factflow_assets.extraction.documents import decode_html

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)

        async def page(response, url: str, number: int, in_pool) -> None:
            html = decode_html(response.content, response.headers.get("content-type", ""))
            markdown, segments = await in_pool(extract_and_segment, html, url)
            (folder / f"{number}.md").write_text(markdown)
            for part, text in enumerate(segments):
                (folder / f"{number}-{part}.md").write_text(text)

        return scripted(sitemap_url, CONCURRENCY, page)


def extract_and_segment(html: str, url: str) -> tuple[str, list[str]]:
    """In a worker: factflow's extractor, then its segmenter at smart_segmenter's defaults."""
    from factflow_assets.extraction.markdown_extraction import extract_markdown
    from factflow_assets.extraction.markdown_segments import segment_markdown

    markdown = extract_markdown(html, url).markdown
    return markdown, [segment.text for segment in segment_markdown(markdown, 512, 64)]


def trafilatura_fast(html: str, url: str) -> str | None:
    import trafilatura

    return trafilatura.extract(html, url=url, output_format="markdown", fast=True, include_links=True)


def scrapy_peer(sitemap_url: str) -> tuple[int, float] | None:
    """(pages, seconds) of benchmarks/scrapy_peer.py, or None when Scrapy cannot be imported (said)."""
    try:
        import scrapy  # noqa: F401
    except ImportError as error:
        print(f"(p) Scrapy cannot be imported: {error} (pip install -e '.[benchmark]')")
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


def rate(pages: int, seconds: float) -> str:
    return f"{pages} pages in {seconds:.1f} s = {pages / seconds:.1f} pages/s"


def ratio(value: float, target: float) -> str:
    return f"{value:.2f} (target >= {target}: {'met' if value >= target else 'MISSED'})"


def compare(label: str, site, peer_target: float, full: bool) -> tuple[float, dict | None]:
    """One round on one site: (s), (p), (b) and their ratios; with `full`, also (a), (h), the first
    markdown, the stages and (e). Returns (b)'s peak RSS and, with `full`, (b)'s answer and home."""
    print(f"--- {label}")
    sitemap = site.url("/sitemap_index.xml")
    rates = {}
    if full:
        pages, seconds = bare_limit(sitemap)
        rates["a"] = pages / seconds
        print(f"(a) bare limit, factflow's extractor: {rate(pages, seconds)}")
        pages, seconds = hand_written(sitemap)
        rates["h"] = pages / seconds
        print(f"(h) hand-written, httpx + trafilatura fast: {rate(pages, seconds)}")
    pages, seconds = same_job(sitemap)
    rates["s"] = pages / seconds
    print(f"(s) the same job, hand-written (httpx, factflow's extractor and segmenter, files): {rate(pages, seconds)}")
    peer = scrapy_peer(sitemap)
    if peer:
        rates["p"] = peer[0] / peer[1]
        print(f"(p) Scrapy + trafilatura fast: {rate(*peer)}")
    with tempfile.TemporaryDirectory() as home:
        env = fresh_env(home)
        started = time.time()
        wall, summary, peak = run_factflow(env, sitemap)
        stored = {s["stage"]: s["completed"] for s in summary["stages"]}
        mine = stored["html_to_markdown"] / wall
        print(f"(b) factflow: {stored['html_to_markdown']} pages to markdown, {stored['smart_segmenter']} segmented, in {wall:.1f} s wall "
              f"(execution {summary['duration_s']:.1f} s) = {mine:.1f} pages/s")
        if "p" in rates:
            print(f"    b/p = {ratio(mine / rates['p'], peer_target)}")
        print(f"    b/s = {ratio(mine / rates['s'], 0.9)}")
        if not full:
            return peak, None
        print(f"    b/a = {mine / rates['a']:.2f}, b/h = {mine / rates['h']:.2f}")
        first = first_markdown_at(home) - started
        print(f"    first markdown stored {first:.1f} s after the command started (target <= 2 s: {'met' if first <= 2 else 'MISSED'})")
        spans = stage_spans(home)
        full_markdown = markdown_span(home)
        print(f"    stages: {spans_text(spans)}")
        print(f"(d) peak RSS of (b): {peak:.0f} MiB")
        before = site.total_requests()
        replay_wall, _replayed, _ = factflow(env, "execution", "replay", summary["id"], "--from-stage", "web_content_storage")
        print(f"(e) replay from web_content_storage: {replay_wall:.1f} s wall = {replay_wall / full_markdown:.2f} of the markdown route's "
              f"{full_markdown:.1f} s span in (b) (target <= 1.1); {site.total_requests() - before} requests to the site")
        print(f"    stages: {spans_text(stage_spans(home))}")
        return peak, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds before each answer of the site")
    parser.add_argument("--large", type=int, default=10000, help="pages of the RSS run (0: skip)")
    args = parser.parse_args()
    articles = load_articles()

    with benchmark_site(args.pages, args.latency, articles) as site:
        peak, _ = compare(f"{args.pages} article pages, {args.latency * 1000:.0f} ms latency", site, 1.2, full=True)
    with benchmark_site(args.pages, 0.0, articles) as site:
        compare(f"{args.pages} article pages, no latency", site, 1.2, full=False)
    with benchmark_site(args.pages, args.latency, load_docs_pages()) as site:
        compare(f"{args.pages} documentation pages (docs-dev, served in turn), {args.latency * 1000:.0f} ms latency", site, 1.0, full=False)

    with benchmark_site(1, 0.0, articles) as site, tempfile.TemporaryDirectory() as home:
        env = fresh_env(home)
        walls = [run_factflow(env, site.url("/sitemap_index.xml"))[0] for _ in range(3)]
        print(f"(c) fixed cost: a one-page execution {statistics.median(walls):.2f} s wall (median of 3: "
              f"{', '.join(f'{w:.2f}' for w in walls)}; target <= 1.5 s)")

    if args.large:
        with benchmark_site(args.large, 0.0, articles) as site, tempfile.TemporaryDirectory() as home:
            wall, summary, large_peak = run_factflow(fresh_env(home), site.url("/sitemap_index.xml"))
            done = {s["stage"]: s["completed"] for s in summary["stages"]}["html_to_markdown"]
            print(f"(d) {args.large}-page run: {done} pages in {wall:.0f} s = {done / wall:.1f} pages/s; peak RSS {large_peak:.0f} MiB "
                  f"(target <= 1024 MiB and flat: {peak:.0f} MiB at {args.pages})")


if __name__ == "__main__":
    main()
