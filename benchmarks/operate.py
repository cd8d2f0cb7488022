"""What operating factflow costs: the UI's start and stop, pause and resume, health and metrics.

    .venv/bin/python benchmarks/operate.py [--latency 2.0]

In a fresh FACTFLOW_HOME, each step a `factflow` process as an operator would type it:
- an execution of the shipped pipeline (its scraper at concurrency 2, so that pages wait) runs
  against the demo site (each answer delayed by `--latency`); once it scrapes, `pipeline pause sitemap_scraper`: how long until `pipeline list`
  shows nothing in flight, and that nothing is fetched while paused; then `resume` and the time
  to completion;
- `system health` and `system metrics`, wall time (median of 5);
- the reading commands on the ended execution (median of 5 each), beside the 0.5 s target for
  those that need nothing of Dagster but its run storage;
- `factflow ui`: time until its URL answers, and from SIGTERM until every process is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.processes import rss_kib, session_of_child  # noqa: E402
from factflow_assets.demo.site import demo_site  # noqa: E402
from factflow_assets.settings import SHIPPED_PIPELINES_DIR, Settings  # noqa: E402
from resources.database import FactflowDatabase  # noqa: E402

FACTFLOW = Path(sys.executable).parent / "factflow"


def factflow(env: dict, *args: str) -> tuple[float, object]:
    started = time.perf_counter()
    done = subprocess.run([str(FACTFLOW), *args, "--output", "json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(f"factflow {' '.join(args)} failed: {done.stderr.strip()}")
    return wall, json.loads(done.stdout)


def scrape_route(env: dict, execution_id: str) -> dict:
    _, routes = factflow(env, "pipeline", "list")
    return next(r for r in routes if r["execution_id"] == execution_id and r["route"] == "sitemap_scraper")


def scraper_rows(db: FactflowDatabase, execution_id: str) -> dict[str, int]:
    """{status: count} of the scraper's current rows, read straight from the database (polling
    through the CLI would cost a process start per look)."""
    counts: dict[str, int] = {}
    for row in db.lineage.stage_counts(execution_id):
        if row["stage"] == "web_scraper":
            counts[row["status"]] = row["count"]
    return counts


def wait(condition, what: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def pause_and_resume(env: dict, latency: float) -> None:
    db = FactflowDatabase(Settings.from_env(env).database_url)
    with demo_site(latency=latency) as site:
        process = subprocess.Popen(
            [str(FACTFLOW), "execution", "start", "web_to_markdown", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "paused"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait(lambda: db.executions.find_by_tag("paused") is not None, "the execution to be recorded")
        execution_id = db.executions.find_by_tag("paused").id
        wait(lambda: scraper_rows(db, execution_id).get("completed", 0) >= 2, "the scraper to get going")
        started = time.monotonic()
        command_wall, _ = factflow(env, "pipeline", "pause", "sitemap_scraper")
        wait(lambda: scraper_rows(db, execution_id).get("pending", 0) == 0, "in flight to drain")
        drained = time.monotonic() - started
        route = scrape_route(env, execution_id)
        requests = site.total_requests()
        time.sleep(5)
        still = scrape_route(env, execution_id)
        print(f"pause: the command {command_wall:.1f} s; nothing in flight {drained:.1f} s after it was typed "
              f"(site latency {latency:g} s, heartbeat 2 s); over 5 s paused: done {route['done']} → {still['done']}, "
              f"{site.total_requests() - requests} requests, pending {still['pending']}")
        resumed_at = time.monotonic()
        factflow(env, "pipeline", "resume", "sitemap_scraper")
        process.wait(timeout=300)
        _, summary = factflow(env, "execution", "get", execution_id)
        print(f"resume: execution {summary['status']} {time.monotonic() - resumed_at:.1f} s after the resume")


def median_wall(env: dict, *args: str, runs: int = 5) -> float:
    return statistics.median(factflow(env, *args)[0] for _ in range(runs))


#: Commands that only read: those marked True open Dagster's instance (run statuses, the runs list).
READING = (
    (("execution", "list"), False), (("execution", "get", "{id}"), True), (("pipeline", "list"), False),
    (("pipeline", "list", "--execution", "{id}"), True), (("lineage", "stats", "-e", "{id}"), False),
    (("storage", "list", "-e", "{id}", "--limit", "5"), False), (("system", "metrics"), True),
)


def reading_commands(env: dict) -> None:
    _wall, listed = factflow(env, "execution", "list")
    execution_id = listed[0]["id"]
    print("reading commands, wall time (median of 5; target <= 0.5 s where Dagster is not needed):")
    for args, opens_dagster in READING:
        args = tuple(part.format(id=execution_id) for part in args)
        seconds = median_wall(env, *args)
        why = "opens Dagster's instance" if opens_dagster else "no Dagster"
        print(f"    factflow {' '.join(args[:3]):<34} {seconds:.2f} s  ({why})")


def ui_start_stop(env: dict) -> None:
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    process = subprocess.Popen([str(FACTFLOW), "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = process.stdout.readline().strip()
    ready = time.monotonic() - started
    graphql = httpx.post(f"{url}/graphql", json={"query": "{ assetNodes { id } }"}, timeout=60).json()
    session = session_of_child(process.pid)
    if session is None:
        raise SystemExit("factflow ui started no dagster dev")
    children = [int(p) for p in subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True).stdout.split()]
    rss = sum(rss_kib(pid) for pid in children) / 1024
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    print(f"ui: answering after {ready:.1f} s ({len(graphql['data']['assetNodes'])} assets over GraphQL, {len(children)} processes, "
          f"{rss:.0f} MiB RSS); stopped {time.monotonic() - stopping:.1f} s after SIGTERM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds the demo site waits before each answer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FACTFLOW_HOME": home}
        for name in ("FACTFLOW_STORAGE_URI", "FACTFLOW_DATABASE_URL", "DAGSTER_HOME"):
            env.pop(name, None)
        pipelines = Path(home) / "pipelines"
        pipelines.mkdir()
        shipped = (SHIPPED_PIPELINES_DIR / "web_to_markdown.yaml").read_text()
        (pipelines / "web_to_markdown.yaml").write_text(shipped.replace("concurrency: 8", "concurrency: 2", 1))
        env["FACTFLOW_PIPELINES_DIR"] = str(pipelines)
        pause_and_resume(env, args.latency)
        print(
            f"system health: {median_wall(env, 'system', 'health'):.2f} s wall; system metrics: {median_wall(env, 'system', 'metrics'):.2f} s wall (median of 5)"  # noqa: E501
        )
        reading_commands(env)
        ui_start_stop(env)


if __name__ == "__main__":
    main()
