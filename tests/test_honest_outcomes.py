"""An execution never reports a success it did not have (architecture §2.6).

A stage that had input and of which no invocation succeeded fails, and with it the execution: an
unreachable sitemap is `failed` and every command that waits on it exits 1. A page not fetched
because its robots.txt could not be read is a failed row naming why, never a skip.
"""

import socket

import pytest
from e2e_harness import as_json, rows, run, stages

from factflow_assets.demo.server import Resource

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_sitemap_fails_the_execution_and_every_wait_on_it(pipelines, env):
    sitemap = f"http://127.0.0.1:{closed_port()}/sitemap.xml"
    started = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}", "--tag", "gone", exit_code=1)
    assert started["status"] == "failed"
    assert started["error"].startswith("scrape/sitemap_parser: every input message failed (1 of 1")
    assert "ClientConnectorError" in started["error"] and "ConnectionRefusedError" in started["error"]  # the real cause
    assert (stages(started)["sitemap_parser"]["failed"], stages(started)["sitemap_parser"]["completed"]) == (1, 0)
    assert as_json("execution", "wait", "gone", exit_code=1)["status"] == "failed"
    assert as_json("execution", "get", "gone")["runs"][0]["status"] == "FAILURE"  # the Dagster UI shows it red too
    shown = run("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}")
    assert shown.exit_code == 1 and "failed" in shown.stdout


def test_pages_whose_robots_txt_cannot_be_read_fail_naming_the_cause(pipelines, env, site, tmp_path, monkeypatch):
    db, _ = env
    server = site({
        "/robots.txt": Resource(b"down for maintenance", status=503, content_type="text/plain"),
        "/sitemap.xml": Resource(
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + b"".join(b"<url><loc>{{base_url}}/p%d</loc></url>" % i for i in range(3))
            + b"</urlset>",
            content_type="application/xml",
        ),
    })
    folder = tmp_path / "pipelines"
    text = (folder / "site_md.yaml").read_text().replace("respect_robots: false", "respect_robots: true")
    (folder / "site_md.yaml").write_text(text)

    result = as_json("execution", "start", "site_md", "--set", f"sitemap_url={server.url('/sitemap.xml')}", exit_code=1)
    assert result["status"] == "failed"
    scraped = rows(db, result["id"], "web_scraper")
    assert len(scraped) == 3 and {r["status"] for r in scraped} == {"failed"}
    assert {r["error_class"] for r in scraped} == {"RobotsUnreachable"}
    assert all("could not be fetched (HTTP 503" in r["error_message"] for r in scraped)
    assert all(server.requests[f"/p{i}"] == 0 for i in range(3))  # RFC 9309: nothing crawled


def test_a_pipeline_copied_under_another_name_runs_as_itself(pipelines, env, tmp_path):
    """The same YAML under two file names has one config hash: the copy runs as its own pipeline
    (its job, its partitions), not as the one first frozen with that hash."""
    import os
    from pathlib import Path

    from factflow_assets.demo.site import demo_site

    folder = Path(os.environ["FACTFLOW_PIPELINES_DIR"])
    (folder / "docs_site.yaml").write_text((folder / "site_md.yaml").read_text())
    with demo_site() as site:
        sitemap = site.url("/sitemap_index.xml")
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}")
        copy = as_json("execution", "start", "docs_site", "--set", f"sitemap_url={sitemap}")
    assert first["status"] == copy["status"] == "completed" and first["config_hash"] == copy["config_hash"]
    assert copy["pipeline"] == "docs_site" and as_json("execution", "get", copy["id"])["pipeline"] == "docs_site"
    assert [e["status"] for e in as_json("execution", "list")] == ["completed", "completed"]  # no queued leftover
