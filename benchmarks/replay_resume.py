"""What replay, resume and cancel cost on the shipped pipeline against the demo site.

    .venv/bin/python benchmarks/replay_resume.py [--latency 0.3]

In a fresh FACTFLOW_HOME, each step a `factflow` process as an operator would type it:
a full execution; an in-place replay from web_scraper (re-publishes the stored pages into
web_content_storage, html_to_markdown and smart_segmenter) with each replayed stage's span beside
the full run's; the same again with the site stopped; a replay into the markdown route (a child
execution); an execution killed with SIGKILL while it scrapes, then how long until
`execution get` reports it interrupted, and the resume; an execution cancelled while it scrapes,
how long the cancel took, and the resume. Prints wall times and the site's request counts
(a replay fetches nothing; a resume fetches only what was not fetched).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factflow_assets.demo.site import demo_site  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"
REPLAYED = ("web_content_storage", "html_to_markdown", "smart_segmenter")


def factflow(env: dict, *args: str) -> tuple[float, dict | list]:
    started = time.perf_counter()
    done = subprocess.run([str(FACTFLOW), *args, "--output", "json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"factflow {' '.join(args)} failed: {done.stderr.strip()}")
    return wall, json.loads(done.stdout)


def scraped(env: dict, tag: str) -> int:
    try:
        _, rows = factflow(env, "lineage", "list", "--execution", tag, "--adapter", "web_scraper", "--status", "completed")
    except SystemExit:
        return 0
    return len(rows)


def start_background(env: dict, sitemap: str, tag: str) -> subprocess.Popen:
    args = [str(FACTFLOW), "execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}", "--tag", tag]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_scraping(env: dict, tag: str, pages: int = 4) -> None:
    deadline = time.monotonic() + 120
    while scraped(env, tag) < pages:
        if time.monotonic() > deadline:
            raise SystemExit(f"{tag}: the scraper did not get going")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the demo site takes per answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, demo_site(latency=args.latency) as site:
        env = {**os.environ, "FACTFLOW_HOME": home}
        env.pop("DAGSTER_HOME", None)
        env.pop("FACTFLOW_PIPELINES_DIR", None)
        sitemap = site.url("/sitemap_index.xml")

        def requests() -> int:
            return site.total_requests()

        wall, full = factflow(env, "execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}", "--tag", "full")
        full_requests = requests()
        print(f"full execution: {wall:.2f} s wall, {full['duration_s']:.2f} s execution, {full_requests} requests")

        _, first_stats = factflow(env, "lineage", "stats", "--execution", "full")
        before = requests()
        wall, replayed = factflow(env, "execution", "replay", "full", "--from-stage", "web_scraper")
        print(f"replay from web_scraper (in place): {wall:.2f} s wall, {replayed['status']}, {requests() - before} requests, "
              f"{replayed['replay']['deleted_objects']} objects deleted")
        _, replay_stats = factflow(env, "lineage", "stats", "--execution", "full")
        spans = {(row["route"], row["stage"]): row["span_s"] for row in first_stats}
        for row in replay_stats:
            if row["stage"] in REPLAYED:
                print(f"  {row['stage']:<20} span {row['span_s']:.2f} s in the replay, {spans[(row['route'], row['stage'])]:.2f} s in the full run")
        wall, child = factflow(env, "execution", "replay", "full", "--from-stage", "web_content_storage", "--to-route", "markdown_processor")
        print(f"replay into markdown_processor (child {child['id']}): {wall:.2f} s wall, {requests() - before} requests")

        before = requests()
        process = start_background(env, sitemap, "killed")
        wait_scraping(env, "killed")
        process.send_signal(signal.SIGKILL)
        process.wait()
        wall, got = factflow(env, "execution", "get", "killed")
        print(f"killed mid-scrape: `execution get` says {got['status']} in {wall:.2f} s wall (one command)")
        fetched_by_killed = requests() - before
        wall, resumed = factflow(env, "execution", "resume", "killed")
        print(f"resume: {wall:.2f} s wall, {resumed['status']}; requests {fetched_by_killed} before the kill + "
              f"{requests() - before - fetched_by_killed} by the resume (an uninterrupted run: {full_requests})")

        before = requests()
        process = start_background(env, sitemap, "cancelled")
        wait_scraping(env, "cancelled")
        wall, cancelled = factflow(env, "execution", "cancel", "cancelled")
        process.wait(timeout=120)
        fetched_before_resume = requests() - before
        print(f"cancel mid-scrape: {wall:.2f} s wall until the run stopped ({cancelled['status']})")
        wall, resumed = factflow(env, "execution", "resume", "cancelled")
        print(f"resume after cancel: {wall:.2f} s wall, {resumed['status']}; requests {fetched_before_resume} before + "
              f"{requests() - before - fetched_before_resume} by the resume (an uninterrupted run: {full_requests})")

        site.stop()  # gone, as right after `factflow demo`: a replay must not need it
        wall, replayed = factflow(env, "execution", "replay", "full", "--from-stage", "web_scraper")
        failed = sum(stage["failed"] for stage in replayed["stages"] if stage["stage"] in REPLAYED)
        print(f"replay from web_scraper with the site stopped: {wall:.2f} s wall, {replayed['status']}, "
              f"{failed} failed messages in the replayed stages, {replayed['replay']['deleted_objects']} objects deleted")


if __name__ == "__main__":
    main()
