"""`factflow ui` end to end: the webserver and daemon on a loopback port, seen over GraphQL and in
a headless browser, then stopped by SIGTERM with nothing left behind.

One UI serves the whole module (starting it costs ~10 s). Screenshots go to test-artifacts/ui/
(or $FACTFLOW_TEST_ARTIFACTS/ui/); the browser test asserts on the text the pages show.
"""

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from cli.main import cli
from conftest import services_required
from e2e_harness import REMARK
from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import PROJECT_ROOT, SHIPPED_PIPELINES_DIR
from resources.database import dispose_engines

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("FACTFLOW_TEST_ARTIFACTS") or PROJECT_ROOT / "test-artifacts") / "ui"
SCHEDULE = "schedule: {cron: '0 6 * * *', timezone: UTC}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def invoke_json(*args) -> dict:
    result = CliRunner().invoke(cli, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def processes():
    """(pid, parent pid, session id) of every live process, from /proc."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent, _group, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            except (OSError, ValueError):
                continue
            if state != "Z":
                yield int(entry.name), int(parent), int(session)


def session_processes(session_id: int) -> list[int]:
    return [pid for pid, _, session in processes() if session == session_id]


class UI:
    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self.url = url

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        answer = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60).json()
        assert "errors" not in answer, answer
        return answer["data"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A factflow home with one finished execution, and `factflow ui` serving it."""
    root = tmp_path_factory.mktemp("ui")
    pipelines = root / "pipelines"
    pipelines.mkdir()
    shutil.copy(SHIPPED_PIPELINES_DIR / "web_to_markdown.yaml", pipelines)
    (pipelines / "remark.yaml").write_text(REMARK + SCHEDULE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACTFLOW_HOME", str(root / "home"))
        patch.setenv("FACTFLOW_PIPELINES_DIR", str(pipelines))
        for name in ("FACTFLOW_STORAGE_URI", "FACTFLOW_DATABASE_URL", "DAGSTER_HOME"):
            patch.delenv(name, raising=False)
        with demo_site() as site:
            sitemap = site.url("/sitemap_index.xml")
            finished = invoke_json("execution", "start", "web_to_markdown", "--set", f"sitemap_url={sitemap}", "--tag", "shown")
            url = f"http://127.0.0.1:{free_port()}"
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "ui", "--port", url.rsplit(":", 1)[1]],
                cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                lines: queue.Queue = queue.Queue()
                threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
                assert lines.get(timeout=120).strip() == url  # printed once the webserver answers
                yield UI(process, url), finished, sitemap
            finally:
                sessions = {session for _, parent, session in processes() if parent == process.pid}
                if process.poll() is None:
                    process.kill()
                    process.wait()
                for session in sessions:  # `dagster dev` and its children, if factflow ui could not stop them
                    try:
                        os.killpg(session, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        dispose_engines()


def test_graphql_shows_assets_grouped_by_route_partitions_checks_metadata_and_schedules(served):
    ui, finished, _ = served
    nodes = ui.graphql("""{ assetNodes { assetKey { path } groupName partitionKeys
        assetChecksOrError { ... on AssetChecks { checks { name } } } } }""")["assetNodes"]
    by_key = {tuple(n["assetKey"]["path"]): n for n in nodes}
    scraper = by_key[("web_to_markdown", "sitemap_scraper", "web_scraper")]
    assert scraper["groupName"] == "web_to_markdown__sitemap_scraper"
    assert by_key[("web_to_markdown", "markdown_processor", "smart_segmenter")]["groupName"] == "web_to_markdown__markdown_processor"
    assert by_key[("remark", "plain_markdown", "html_to_markdown")]["groupName"] == "remark__plain_markdown"
    assert scraper["partitionKeys"] == [finished["id"]]  # executions are partitions
    assert {c["name"] for c in scraper["assetChecksOrError"]["checks"]} == {"no_failed_messages", "outputs_for_every_input"}

    events = ui.graphql("""query ($key: AssetKeyInput!, $partition: String!) { assetNodeOrError(assetKey: $key) {
        ... on AssetNode { assetMaterializations(partitions: [$partition]) { runId partition
            metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text }
                              ... on PathMetadataEntry { path } } }
          assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }""",
                        {"key": {"path": ["web_to_markdown", "sitemap_scraper", "web_scraper"]}, "partition": finished["id"]})
    node = events["assetNodeOrError"]
    [materialization] = node["assetMaterializations"]
    metadata = {e["label"]: e.get("intValue", e.get("text", e.get("path"))) for e in materialization["metadataEntries"]}
    pages, broken = expected_pages()
    assert (metadata["messages_in"], metadata["messages_failed"]) == (pages + broken, broken)
    assert metadata["config_hash"] == finished["config_hash"]
    assert metadata["storage_prefix"].endswith(f"/executions/{finished['id']}/sitemap_scraper/web_scraper/")
    checks = {c["name"]: c["executionForLatestMaterialization"]["status"] for c in node["assetChecksOrError"]["checks"]}
    assert checks == {"no_failed_messages": "FAILED", "outputs_for_every_input": "SUCCEEDED"}  # the broken links

    schedules = ui.graphql("""{ schedulesOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "factflow"}) {
        ... on Schedules { results { name cronSchedule executionTimezone pipelineName } } } }""")["schedulesOrError"]["results"]
    assert schedules == [{"name": "remark_schedule", "cronSchedule": "0 6 * * *", "executionTimezone": "UTC", "pipelineName": "remark"}]


def test_a_detached_execution_runs_through_the_uis_daemon(served):
    _, _, sitemap = served
    queued = invoke_json("execution", "start", "web_to_markdown", "--detach", "--set", f"sitemap_url={sitemap}")
    assert queued["status"] == "queued"
    done = invoke_json("execution", "wait", queued["execution_id"], "--timeout", "180", "--interval", "0.5")
    assert done["status"] == "completed" and done["runs"][0]["kind"] == "start"


def test_health_sees_the_uis_daemon_that_the_schedule_needs(served):
    result = CliRunner().invoke(cli, ["system", "health", "--output", "json"])
    report = json.loads(result.stdout)
    daemon = next(p for p in report["probes"] if p["name"] == "dagster daemon")
    assert (result.exit_code, report["overall"], daemon["status"]) == (0, "healthy", "ok")
    assert daemon["detail"].startswith("running, last heartbeat")


@pytest.mark.skipif(CHROMIUM is None and not services_required(), reason="no chromium on this machine (apt install chromium)")
def test_the_browser_shows_the_asset_graph_and_a_stage_materialisation(served):
    from playwright.sync_api import sync_playwright

    ui, finished, _ = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{ui.url}/locations/factflow/asset-groups/web_to_markdown__sitemap_scraper", wait_until="networkidle")
            graph = page.locator("body")
            for stage in ("sitemap_parser", "url_expander", "web_scraper", "web_content_storage"):
                graph.get_by_text(stage, exact=True).first.wait_for(timeout=30_000)
            page.get_by_text("1 / 2 Passed").first.wait_for()  # the scraper's checks: the broken links failed one
            dismiss_welcome(page)
            page.screenshot(path=ARTIFACTS / "asset-graph.png")

            page.goto(f"{ui.url}/assets/web_to_markdown/markdown_processor/html_to_markdown?view=events&partition={finished['id']}",
                      wait_until="networkidle")
            page.get_by_text(f"Partition {finished['id']} materialized").first.wait_for(timeout=30_000)
            shown = page.inner_text("body")
            for label in ("messages_in", "messages_failed", "storage_prefix", "config_hash", finished["config_hash"]):
                assert label in shown
            dismiss_welcome(page)
            page.screenshot(path=ARTIFACTS / "html_to_markdown-materialization.png")
        finally:
            browser.close()
    assert (ARTIFACTS / "asset-graph.png").stat().st_size > 10_000


def dismiss_welcome(page) -> None:
    """Dagster's UI may greet a new browser with a community dialog; it hides the screenshot."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count() and skip.first.is_visible():
        skip.first.click()


def test_sigterm_stops_the_webserver_the_daemon_and_the_code_servers(served):
    ui, _, _ = served
    [session] = {session for _, parent, session in processes() if parent == ui.process.pid}  # `dagster dev` leads its own
    assert len(session_processes(session)) >= 3  # dagster dev, webserver, daemon (and code servers)
    started = time.monotonic()
    ui.process.send_signal(signal.SIGTERM)
    assert ui.process.wait(timeout=60) == 0
    took = time.monotonic() - started
    deadline = time.monotonic() + 10
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(session) == [], f"left running after {took:.1f} s"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{ui.url}/server_info", timeout=2)
