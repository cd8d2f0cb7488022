"""A very large sitemap: how soon the first page is fetched, and the memory it takes meanwhile.

    .venv/bin/python benchmarks/large_sitemap.py [--pages 200000] [--watch 30]

Serves benchmarks/site.py with `--pages` pages (a sitemap index of 500-URL sitemaps) and starts
`factflow execution start sitemap` on it (benchmarks/pipelines/sitemap.yaml: sitemap → URLs →
pages → markdown). Prints, each beside its target: seconds from the command's start to the first
web_scraper row (url_expander hands its URL messages on as it stores them, so the first fetch
must not wait for the whole sitemap to be stored), and the peak RSS of the command's process tree
(and PSS: shared pages counted once) over the first `--watch` seconds after that (then the run is stopped; it is not meant to finish).
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.site import benchmark_site  # noqa: E402
from benchmarks.throughput import FACTFLOW, PeakRss, fresh_env  # noqa: E402


def first_fetch(home: str) -> bool:
    """Whether a web_scraper row exists yet in the fresh home's SQLite database."""
    database = Path(home) / "factflow.db"
    if not database.exists():
        return False
    try:
        with closing(sqlite3.connect(database, timeout=1)) as db:
            return db.execute("SELECT 1 FROM factflow_lineage WHERE stage = 'web_scraper' LIMIT 1").fetchone() is not None
    except sqlite3.OperationalError:  # the schema is not there yet
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200_000)
    parser.add_argument("--watch", type=float, default=30.0, help="seconds the run goes on after its first fetch")
    args = parser.parse_args()
    print(f"a sitemap index of {args.pages:,} URLs through sitemap.yaml")
    with tempfile.TemporaryDirectory() as home, benchmark_site(args.pages) as site:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(FACTFLOW), "execution", "start", "sitemap", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}"],
            env=fresh_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        rss, pss = PeakRss(process.pid), PeakRss(process.pid, proportional=True)
        try:
            while not first_fetch(home):
                if process.poll() is not None:
                    raise SystemExit(f"the execution ended ({process.returncode}) before any page was fetched")
                time.sleep(0.2)
            first = time.perf_counter() - started
            time.sleep(args.watch)
        finally:
            peak, proportional = rss.stop(), pss.stop()
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        print(f"    first page fetched {first:.1f} s after the command started (target: a few seconds, was 27 s)")
        print(
            f"    over the first {first + args.watch:.0f} s: peak RSS {peak:.0f} MiB, PSS {proportional:.0f} MiB "
            "(the process tree with its extraction workers; target: flat in the sitemap's size, was 1.1 GiB)"
        )


if __name__ == "__main__":
    main()
