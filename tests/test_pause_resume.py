"""Pause and resume a route from another process while an execution runs (architecture §6); Ctrl+C
on a run in the terminal."""

import signal
import time

import pytest
from e2e_harness import (
    as_json,
    rows,
    run,
    scraping_midway,
    start_in_subprocess,
    wait_for,
)

from factflow_assets.demo.site import demo_site, expected_pages

PAGES, BROKEN = expected_pages()


def scrape_route(tag: str) -> dict:
    listed = as_json("pipeline", "list")
    return next(r for r in listed if r["route"] == "scrape" and r["execution_id"] == tag)


@pytest.mark.slow
def test_a_paused_route_drains_waits_and_finishes_every_message_after_resume(pipelines, env):
    db, _ = env
    with demo_site(latency=0.5) as site:
        process = start_in_subprocess(site.url("/sitemap_index.xml"), "paused-run")
        try:
            wait_for(scraping_midway(db, "paused-run"), what="the scraper midway", process=process)
            execution_id = db.executions.find_by_tag("paused-run").id
            paused = as_json("pipeline", "pause", "scrape")
            assert paused == {"route": "scrape", "state": "paused", "executions": [execution_id]}

            wait_for(lambda: scrape_route(execution_id)["in_flight"] == 0, timeout=30, what="in-flight messages to drain")
            drained = scrape_route(execution_id)
            requests = site.total_requests()
            time.sleep(5)  # two and a half heartbeats: a loop that ignored the pause would move on
            still = scrape_route(execution_id)
            assert still == drained and still["state"] == "paused" and still["pending"] > 0
            assert site.total_requests() == requests  # nothing fetched while paused
            assert process.poll() is None  # the run waits, alive
            assert as_json("execution", "get", execution_id)["status"] == "running"
            metrics = as_json("system", "metrics")
            assert metrics["executions_by_status"] == {"running": 1} and metrics["runs"]["in_progress"] == 1
            [running] = metrics["throughput"]
            assert running["execution_id"] == execution_id and running["messages_finished"] >= 3
            assert running["per_second_overall"] > 0
            shown = run("pipeline", "list").stdout
            assert execution_id in shown and "paused" in shown and "markdown" in shown

            assert as_json("pipeline", "resume", "scrape")["state"] == "running"
            assert process.wait(timeout=120) == 0
        finally:
            if process.poll() is None:
                process.kill()
    assert "Traceback" not in process.stderr.read()
    summary = as_json("execution", "get", execution_id)
    assert summary["status"] == "completed"
    scraped = rows(db, execution_id, "web_scraper")
    assert len(scraped) == PAGES + BROKEN and {r["status"] for r in scraped} == {"completed", "failed"}
    assert sum(r["status"] == "completed" for r in rows(db, execution_id, "smart_segmenter")) == PAGES
    assert as_json("pipeline", "list") == []


@pytest.mark.slow
def test_ctrl_c_ends_the_run_at_once_interrupted_and_a_resume_finishes_it(pipelines, env):
    """Dagster turns a SIGINT in a step into a failed step: the execution must still read
    `interrupted` with how to resume, its in-flight rows closed, the process gone within seconds."""
    db, _ = env
    with demo_site(latency=0.5) as site:
        process = start_in_subprocess(site.url("/sitemap_index.xml"), "ctrl-c")
        try:
            wait_for(scraping_midway(db, "ctrl-c"), what="the scraper midway", process=process)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) != 0
        finally:
            if process.poll() is None:
                process.kill()
        assert "Traceback" not in process.stderr.read()
        execution_id = db.executions.find_by_tag("ctrl-c").id
        got = as_json("execution", "get", execution_id)
        assert got["status"] == "interrupted" and f"factflow execution resume {execution_id}" in got["error"], got
        assert "pending" not in {r["status"] for r in rows(db, execution_id)}
        assert as_json("execution", "resume", execution_id)["status"] == "completed"
    scraped = [r for r in rows(db, execution_id, "web_scraper") if not r["superseded"]]
    assert len(scraped) == PAGES + BROKEN


def test_pause_names_the_routes_when_the_route_is_unknown(pipelines):
    result = run("pipeline", "pause", "scrap")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no pipeline has a route 'scrap' (routes: markdown, plain_markdown, scrape)"
    assert run("pipeline", "list").stderr.strip() == "no execution is running and no route is paused"


def test_a_route_stays_paused_for_every_process_until_resumed(pipelines, env):
    db, _ = env
    run("pipeline", "pause", "markdown")
    assert db.route_states.is_paused("markdown") and not db.route_states.is_paused("scrape")
    assert "(no execution has it running now)" in run("pipeline", "pause", "markdown").stdout
    # seen with nothing running, in the table and in JSON
    assert as_json("pipeline", "list") == [
        {"execution_id": None, "pipeline": None, "route": "markdown", "state": "paused", "in_flight": 0, "done": 0, "failed": 0, "pending": 0}
    ]
    assert run("pipeline", "list").stdout.split("\n")[1].split() == ["-", "-", "markdown", "paused", "0", "0", "0", "0"]
    # an execution that will wait on it says so at once
    queued = run("execution", "start", "site_md", "--detach", "--tag", "waits")
    assert queued.exit_code == 0
    assert "route markdown is paused: its stages will wait until `factflow pipeline resume markdown`" in queued.stderr
    run("pipeline", "resume", "markdown")
    assert not db.route_states.is_paused("markdown")
