"""Executions through the CLI, end to end: a real Dagster run over a local website.

Checks what the architecture (docs/architecture.md) promises after one execution: objects at
`executions/<exec>/<route>/<stage>/<msg-id>` with sidecars, one lineage row per message per
adapter invocation (failed pages included), the execution completed, JSON-only stdout.
"""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import cli
from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import Settings
from resources.database import FactflowDatabase
from resources.db_schema import lineage
from resources.storage import SIDECAR_SUFFIX, ObjectStore

pytestmark = [pytest.mark.slow, pytest.mark.backends]

KEY = re.compile(r"^executions/(?P<exec>[0-9a-z]{16})/(?P<route>[a-z_]+)/(?P<stage>[a-z_]+)/(?P<msg>[a-z0-9-]+)$")
SIDECAR_FIELDS = {
    "key", "content_type", "size", "sha256", "execution_id", "route", "stage", "adapter_type",
    "message_id", "parent_message_id", "lineage_id", "config_hash", "dagster_run_id", "written_at",
}


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


@pytest.fixture
def demo_website():
    with demo_site() as server:
        yield server


def test_an_execution_stores_every_message_with_sidecar_and_lineage(factflow_home, demo_website, backend):
    sitemap = demo_website.url("/sitemap_index.xml")
    result = invoke("execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}", "--tag", "first", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds only JSON
    execution_id = report["execution_id"]
    assert report["status"] == "completed"
    pages, broken = expected_pages()

    counts = {(s["stage"]): s for s in report["stages"]}
    assert counts["sitemap_parser"]["completed"] == 1
    assert counts["url_expander"]["completed"] == 1
    assert (counts["web_scraper"]["completed"], counts["web_scraper"]["failed"]) == (pages, broken)
    assert counts["web_content_storage"]["completed"] == pages
    assert counts["html_to_markdown"]["completed"] == counts["smart_segmenter"]["completed"] == pages
    assert {f["url"].rsplit("/", 1)[1] for f in report["failures"]} == {"legacy-api.html", "2023-roadmap.html"}

    settings = Settings.from_env()
    store = ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
    everything = list(store.objects(f"executions/{execution_id}/"))
    objects = [o for o in everything if f"executions/{execution_id}/dataset/" not in o.key]
    assert sorted(o.key.rsplit("/", 1)[1] for o in everything if o not in objects) == ["pages.parquet", "segments.parquet"]
    segments = [o for o in objects if "/smart_segmenter/" in o.key]
    assert len(segments) >= pages
    # URL list, one per URL, fetched, kept, its markdown, its segments
    assert len(objects) == 1 + (pages + broken) + pages + pages + pages + len(segments)
    for obj in objects:
        match = KEY.match(obj.key)
        assert match and match["exec"] == execution_id, obj.key
        sidecar = store.metadata(obj.key)
        assert SIDECAR_FIELDS <= set(sidecar)
        assert (sidecar["route"], sidecar["stage"], sidecar["message_id"]) == (match["route"], match["stage"], match["msg"])
        assert sidecar["size"] == obj.size and sidecar["dagster_run_id"]
    page = next(o.key for o in objects if "/web_content_storage/docs-queries" in o.key)
    meta = store.metadata(page)
    assert meta["title"] == "Querying — Tidewater docs" and meta["status"] == 200 and meta["url"].endswith("/docs/queries.html")
    assert meta["fetched_at"] and meta["content_type"] == "text/html; charset=utf-8"
    assert b"time_bucket" in store.get(page)
    assert not any(o.key.endswith(SIDECAR_SUFFIX) for o in objects)

    kept_pages = {store.metadata(o.key)["message_id"]: store.metadata(o.key) for o in objects if "/web_content_storage/" in o.key}
    markdowns = [store.metadata(o.key) for o in objects if "/html_to_markdown/" in o.key]
    assert {m["page_message_id"] for m in markdowns} == set(kept_pages)  # markdown for every page fetched
    for segment in map(store.metadata, (o.key for o in segments)):
        page_meta = kept_pages[segment["page_message_id"]]  # each segment leads back to its page and URL
        assert segment["url"] == page_meta["url"] and segment["tokens"] <= 512
    queries = next(m for m in markdowns if m["url"].endswith("/docs/queries.html"))
    assert queries["title"] and queries["language"] == "en" and queries["content_type"].startswith("text/markdown")

    db = FactflowDatabase(settings.database_url)
    with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(lineage).where(lineage.c.execution_id == execution_id))]
    # one row per message per adapter invocation: 1 sitemap + 1 expansion + every URL fetched + every
    # page kept, converted and segmented; and the dataset written from them
    assert len(rows) == 1 + 1 + (pages + broken) + pages + pages + pages + 1
    assert [(r["route"], r["stage"], r["status"]) for r in rows if r["route"] == "dataset"] == [("dataset", "dataset", "completed")]
    assert {r["status"] for r in rows} == {"completed", "failed"}
    by_id = {r["id"]: r for r in rows}
    for row in rows:
        assert row["dagster_run_id"] and row["finished_at"] and row["config_hash"] == meta["config_hash"]
        if row["stage"] not in ("sitemap_parser", "dataset"):
            assert row["parent_lineage_id"] in by_id  # every row chains back to the first
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["error_class"] for r in failed} == {"HttpStatusError"}

    got = json.loads(invoke("execution", "get", "first", "--output", "json").stdout)
    assert got["id"] == execution_id and got["status"] == "completed"
    assert got["routes"] == [
        {"route": "sitemap_scraper", "completed": 2 + 2 * pages, "unchanged": 0, "failed": broken, "skipped": 0, "in_flight": 0},
        {"route": "markdown_processor", "completed": 2 * pages, "unchanged": 0, "failed": 0, "skipped": 0, "in_flight": 0},
    ]
    assert got["runs"][0]["status"] == "SUCCESS" and got["runs"][0]["kind"] == "start"

    assert stage_checks(execution_id) == {
        **{(stage, check): True for stage in counts for check in ("no_failed_messages", "outputs_for_every_input")},
        ("web_scraper", "no_failed_messages"): False,  # the two broken links
        ("html_to_markdown", "structure_kept"): True,  # every page's markdown kept its region's structure
    }

    listed = json.loads(invoke("execution", "list", "--output", "json").stdout)
    assert [e["id"] for e in listed] == [execution_id]

    # everything went where the backend says: Dagster's storage follows the factflow database
    from dagster import DagsterInstance

    on_postgres = backend.startswith("postgres")
    storage = DagsterInstance.get().run_storage
    if on_postgres:  # dagster-postgres' own, as the subclass that waits out dropped connections
        from dagster_postgres import PostgresRunStorage

        assert isinstance(storage, PostgresRunStorage) and type(storage).__name__ == "WaitingRunStorage"
    else:
        assert type(storage).__name__ == "SqliteRunStorage"
    assert (factflow_home / "factflow.db").exists() != on_postgres
    assert (factflow_home / "storage").exists() != backend.endswith("s3")
    table = invoke("execution", "get", execution_id)
    assert "completed" in table.stdout and "web_content_storage" in table.stdout and "legacy-api" in table.stdout
    kept = next(text for text in table.stdout.splitlines() if "markdown kept of" in text)
    assert kept.startswith("markdown_processor/html_to_markdown: ")  # a blank line before it, not a written-out "\n"


def stage_checks(execution_id: str) -> dict[tuple[str, str], bool]:
    """{(stage, check name): passed} of the latest check evaluations of the execution's partition."""
    from dagster import DagsterInstance
    from dagster._core.event_api import PartitionKeyFilter

    from factflow_assets.assets.location import (
        location_definitions as build_definitions,
    )

    instance = DagsterInstance.get()
    results = {}
    for check in build_definitions().resolve_asset_graph().asset_check_keys:
        partition = PartitionKeyFilter(key=execution_id)
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check], partition_filter=partition).get(check)
        if record is not None:
            results[(check.asset_key.path[-1], check.name)] = record.evaluation.passed
    return results


def test_demo_runs_end_to_end(factflow_home):
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    assert "completed" in result.stdout and "Next:" in result.stdout
    pages, broken = expected_pages()
    report = json.loads(invoke("execution", "list", "--output", "json").stdout)
    assert report[0]["status"] == "completed"
    got = json.loads(invoke("execution", "get", report[0]["id"], "--output", "json").stdout)
    completed = {s["stage"]: s["completed"] for s in got["stages"]}
    # every page fetched ends as markdown and segments
    assert completed["web_content_storage"] == completed["html_to_markdown"] == completed["smart_segmenter"] == pages
    assert len(got["failures"]) == broken


def test_detach_queues_the_run_and_the_daemon_completes_it(factflow_home, demo_website):
    from factflow_assets.operations.instance import ensure_dagster_home, workspace_file
    from factflow_assets.settings import Settings

    ensure_dagster_home(Settings.from_env())  # the daemon must share the CLI's DAGSTER_HOME
    daemon = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster-daemon"), "run", "-w", str(workspace_file(Settings.from_env()))],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), signal.signal(signal.SIGTERM, signal.SIG_DFL)),
        start_new_session=True,  # its code servers too can be stopped as one group
    )
    try:
        sitemap = demo_website.url("/sitemap_index.xml")
        started = invoke("execution", "start", "web_to_markdown", "--detach", "--set", f"sitemap_url={sitemap}", "--output", "json")
        assert started.exit_code == 0, started.output
        queued = json.loads(started.stdout)
        assert queued["status"] == "queued" and queued["run_id"]
        waited = invoke("execution", "wait", queued["execution_id"], "--timeout", "180", "--interval", "0.5", "--output", "json")
        assert waited.exit_code == 0, waited.output
        summary = json.loads(waited.stdout)
        assert summary["status"] == "completed"
        assert {s["stage"]: s["completed"] for s in summary["stages"]}["web_content_storage"] == expected_pages()[0]
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        # A code server of the daemon can outlive it, stuck on a PostgreSQL database this test is
        # about to drop: end the whole session.
        try:
            os.killpg(daemon.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        daemon.wait()
