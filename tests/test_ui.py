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
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner
from conftest import services_required
from e2e_harness import PIPELINE, REMARK

from cli.main import cli
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
    def __init__(self, process: subprocess.Popen, url: str, site):
        self.process = process
        self.url = url
        self.site = site  # the demo site the pipelines scrape

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        answer = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60).json()
        assert "errors" not in answer, answer
        return answer["data"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A factflow home with one finished execution, and `factflow ui` serving it. The shipped
    pipeline's init payload points at the local demo site, so a run the UI starts (which cannot
    say `--set`) scrapes it too."""
    root = tmp_path_factory.mktemp("ui")
    pipelines = root / "pipelines"
    pipelines.mkdir()
    (pipelines / "remark.yaml").write_text(REMARK + SCHEDULE)
    (pipelines / "site_md.yaml").write_text(PIPELINE.format(max_tokens=512, content_types="[text/html]"))  # 2 pages at a time
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACTFLOW_HOME", str(root / "home"))
        patch.setenv("FACTFLOW_PIPELINES_DIR", str(pipelines))
        for name in ("FACTFLOW_STORAGE_URI", "FACTFLOW_DATABASE_URL", "DAGSTER_HOME"):
            patch.delenv(name, raising=False)
        with demo_site() as site:
            sitemap = site.url("/sitemap_index.xml")
            shipped = (SHIPPED_PIPELINES_DIR / "web_to_markdown.yaml").read_text()
            (pipelines / "web_to_markdown.yaml").write_text(shipped.replace("https://example.com/sitemap.xml", sitemap))
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
                yield UI(process, url, site), finished, sitemap
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


REPOSITORY = {"repositoryLocationName": "factflow", "repositoryName": "__repository__"}
HTML_TO_MARKDOWN = ["web_to_markdown", "markdown_processor", "html_to_markdown"]
EVERY_STAGE = [
    ["web_to_markdown", "sitemap_scraper", stage] for stage in ("sitemap_parser", "url_expander", "web_scraper", "web_content_storage")
] + [HTML_TO_MARKDOWN, ["web_to_markdown", "markdown_processor", "smart_segmenter"]]
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def launch(ui: UI, keys: list[list[str]], partition: str) -> str:
    """What the UI's "Materialize" does for a partition: the implicit asset job, a selection, the
    partition tag, no factflow tag."""
    answer = ui.graphql(
        """mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
            ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
        {"params": {"selector": {**REPOSITORY, "jobName": "__ASSET_JOB", "assetSelection": [{"path": key} for key in keys]},
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]}}},
    )["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


def run_status(ui: UI, run_id: str) -> str:
    return ui.graphql("query ($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})["runOrError"]["status"]


def wait_run(ui: UI, run_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while (status := run_status(ui, run_id)) not in FINISHED:
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(0.5)
    return status


def scraper_rows(tag: str) -> list[dict]:
    from factflow_assets.settings import Settings
    from resources.database import FactflowDatabase

    record = FactflowDatabase(Settings.from_env().database_url).executions.find_by_tag(tag)
    return lineage_rows(record.id, "web_scraper") if record else []


def lineage_rows(execution_id: str, stage: str) -> list[dict]:
    from e2e_harness import rows

    from factflow_assets.settings import Settings
    from resources.database import FactflowDatabase

    return rows(FactflowDatabase(Settings.from_env().database_url), execution_id, stage)


def test_materialising_a_stage_in_the_ui_replays_it_from_storage(served):
    ui, finished, _ = served
    before = ui.site.total_requests()
    run_id = launch(ui, [HTML_TO_MARKDOWN], finished["id"])
    assert wait_run(ui, run_id) == "SUCCESS"
    assert ui.site.total_requests() == before  # from what web_content_storage stored

    got = invoke_json("execution", "get", finished["id"])
    assert got["status"] == "completed" and got["runs"][0] == {**got["runs"][0], "run_id": run_id, "kind": "replay"}
    pages, _ = expected_pages()
    history = lineage_rows(finished["id"], "html_to_markdown")
    assert sum(r["superseded"] for r in history) == pages  # the earlier rows are history
    assert {r["dagster_run_id"] for r in history if not r["superseded"]} == {run_id}
    [replay] = [r for r in got["replays"] if r["to_route"] is None]
    assert (replay["from_stage"], replay["superseded_rows"]) == ("web_content_storage", pages)
    assert {r["run_id"] for r in got["runs"]} >= {run_id, finished["runs"][0]["run_id"]}


def test_a_partition_added_and_materialised_in_the_ui_is_a_new_execution(served):
    ui, finished, _ = served
    added = ui.graphql(
        """mutation ($repo: RepositorySelector!, $key: String!) { addDynamicPartition(repositorySelector: $repo,
            partitionsDefName: "web_to_markdown", partitionKey: $key) { __typename } }""",
        {"repo": REPOSITORY, "key": "made-in-the-ui"},
    )
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    run_id = launch(ui, EVERY_STAGE, "made-in-the-ui")
    assert wait_run(ui, run_id) == "SUCCESS"
    made = invoke_json("execution", "get", "made-in-the-ui")
    assert made["status"] == "completed" and made["origin"] == {"kind": "dagster", "run_id": run_id}
    assert [(r["run_id"], r["kind"]) for r in made["runs"]] == [(run_id, "start")]
    assert made["stages"] == finished["stages"]  # the same site, the same counts


def test_terminate_in_the_ui_cancels_a_cli_execution_gracefully_and_re_execute_from_failure_resumes_it(served):
    ui, _, _ = served
    with demo_site(latency=1.0) as slow:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "execution", "start", "site_md", "--set",
             f"sitemap_url={slow.url('/sitemap_index.xml')}", "--tag", "terminated"],
            cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while sum(r["status"] == "completed" for r in scraper_rows("terminated")) < 3:
                assert time.monotonic() < deadline and process.poll() is None, "the scraper did not get going"
                time.sleep(0.2)
            run_id = invoke_json("execution", "get", "terminated")["runs"][0]["run_id"]
            ui.graphql("mutation ($id: String!) { terminateRun(runId: $id) { __typename } }", {"id": run_id})
            assert process.wait(timeout=60) == 1
        finally:
            if process.poll() is None:
                process.kill()
        stopped = invoke_json("execution", "get", "terminated")
        assert stopped["status"] == "cancelled" and run_status(ui, run_id) == "CANCELED"
        everything = lineage_rows(stopped["id"], "web_scraper")
        assert everything and not [r for r in everything if r["status"] in ("pending", "cancelled")]  # in flight finished
        fetched = {urlsplit(r["metadata"]["url"]).path for r in everything if r["status"] == "completed"}
        pages, broken = expected_pages()
        assert len(everything) < pages + broken  # it stopped taking pages

        before = dict(slow.requests)
        again = ui.graphql(
            """mutation ($id: String!) { launchRunReexecution(reexecutionParams: {parentRunId: $id, strategy: FROM_FAILURE}) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack } } }""",
            {"id": run_id},
        )["launchRunReexecution"]
        assert again["__typename"] == "LaunchRunSuccess", "".join(again.get("stack") or []) + str(again.get("message"))
        assert wait_run(ui, again["run"]["runId"]) == "SUCCESS"
        refetched = {path for path, count in slow.requests.items() if count > before.get(path, 0)}
    resumed = invoke_json("execution", "get", "terminated")
    assert resumed["status"] == "completed" and resumed["runs"][0]["kind"] == "resume"
    assert fetched and fetched.isdisjoint(refetched)  # what was fetched before the terminate is not fetched again
    assert {s["stage"]: s["completed"] for s in resumed["stages"]}["smart_segmenter"] == pages


def test_a_backfill_of_one_stage_over_two_executions_replays_each(served):
    ui, finished, _ = served
    partitions = [finished["id"], "made-in-the-ui"]
    answer = ui.graphql(
        """mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) { __typename
            ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {"params": {"partitionNames": partitions, "assetSelection": [{"path": HTML_TO_MARKDOWN}]}},
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    backfill = answer["backfillId"]
    deadline = time.monotonic() + 240
    while True:
        runs = [r for p in partitions for r in invoke_json("execution", "get", p)["runs"] if r.get("backfill") == backfill]
        if len(runs) == 2 and all(r["status"] in FINISHED for r in runs):
            break
        assert time.monotonic() < deadline, f"backfill {backfill}: {runs}; " + str(ui.graphql(
            """query ($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status
                error { message } runs { runId status tags { key value } } } } }""", {"id": backfill}))
        time.sleep(1)
    assert {(r["status"], r["kind"]) for r in runs} == {("SUCCESS", "replay")}
    for partition in partitions:
        got = invoke_json("execution", "get", partition)
        assert got["status"] == "completed"
        backfill_run = next(r["run_id"] for r in got["runs"] if r.get("backfill") == backfill)
        current = [r for r in lineage_rows(got["id"], "html_to_markdown") if not r["superseded"]]
        assert current and {r["dagster_run_id"] for r in current} == {backfill_run}


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
