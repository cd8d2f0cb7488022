"""Replay, resume and cancel, end to end (DESIGN §5–6): proven not to refetch or lose anything.

The local site counts requests per path, so "nothing was fetched again" is a number. A run killed
with SIGKILL in the middle of a stage, then resumed, must leave the same storage (keys and content
hashes) as a run nobody interrupted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import cli
from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import PROJECT_ROOT, Settings
from resources.database import FactflowDatabase
from resources.db_schema import lineage
from resources.storage import ObjectStore

pytestmark = pytest.mark.slow
PAGES, BROKEN = expected_pages()

PIPELINE = """\
version: 1
routes:
  - name: scrape
    concurrency: 2
    adapters:
      - type: sitemap_parser
      - type: url_expander
      - type: web_scraper
        config:
          respect_robots: false
          rate_limit:
            initial_rps: 50
            max_rps: 100
      - type: web_content_storage
  - name: markdown
    input:
      route: scrape
    adapters:
      - type: html_to_markdown
        config:
          workers: 1
          timeout: {timeout}
      - type: smart_segmenter
        config:
          max_tokens: {max_tokens}
          min_tokens: 8
init_message:
  route: scrape
  payload:
    sitemap_url: http://127.0.0.1:1/unset.xml
"""

# A second pipeline whose only route turns stored pages into markdown without links.
REMARK = """\
version: 1
routes:
  - name: plain_markdown
    adapters:
      - type: html_to_markdown
        config:
          workers: 1
          preserve_links: false
init_message:
  route: plain_markdown
  payload: {}
"""


@pytest.fixture
def pipelines(factflow_home, tmp_path, monkeypatch):
    """A pipelines directory; `write(timeout=..., max_tokens=...)` (re)writes site_md.yaml."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    monkeypatch.setenv("FACTFLOW_PIPELINES_DIR", str(folder))
    (folder / "remark.yaml").write_text(REMARK)

    def write(timeout: float = 60, max_tokens: int = 512) -> None:
        (folder / "site_md.yaml").write_text(PIPELINE.format(timeout=timeout, max_tokens=max_tokens))

    write()
    return write


@pytest.fixture
def env(factflow_home):
    settings = Settings.from_env()
    return FactflowDatabase(settings.database_url), ObjectStore(settings.storage_uri)


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def as_json(*args, exit_code=0):
    result = run(*args, "--output", "json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def stages(summary) -> dict:
    return {s["stage"]: s for s in summary["stages"]}


def storage_of(store: ObjectStore, execution_id: str, under: str = "") -> dict[str, str]:
    """{key relative to the execution: sha256 from its sidecar} of every complete object."""
    prefix = f"executions/{execution_id}/"
    return {o.key[len(prefix):]: store.metadata(o.key)["sha256"] for o in store.list(prefix + under)}


def rows(db: FactflowDatabase, execution_id: str, stage: str | None = None) -> list[dict]:
    query = select(lineage).where(lineage.c.execution_id == execution_id)
    if stage:
        query = query.where(lineage.c.stage == stage)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(lineage.c.started_at))]


def path_of(row: dict) -> str:
    return urlsplit(row["metadata"]["url"]).path


def page_requests(site) -> Counter:
    return Counter(site.requests)


def test_a_fixed_downstream_adapter_is_replayed_from_storage_without_refetching(pipelines, env):
    db, store = env
    pipelines(timeout=0.0001)  # misconfigured: every page takes longer than that
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
        assert (stages(first)["html_to_markdown"]["failed"], stages(first)["html_to_markdown"]["completed"]) == (PAGES, 0)
        fetched = site.total_requests()

        pipelines(timeout=60)  # the fix
        replay = as_json("execution", "replay", "t", "--from-stage", "html_to_markdown")
        assert site.total_requests() == fetched  # nothing reached the site

    assert replay["status"] == "completed" and replay["id"] == first["id"]
    assert (stages(replay)["html_to_markdown"]["completed"], stages(replay)["html_to_markdown"]["failed"]) == (PAGES, 0)
    assert stages(replay)["smart_segmenter"]["completed"] == PAGES
    assert stages(replay)["web_scraper"] == stages(first)["web_scraper"]  # upstream untouched
    new_hash = replay["config_hash"]
    assert new_hash != first["config_hash"] and replay["replay"]["previous_config_hash"] == first["config_hash"]

    history = rows(db, first["id"], "html_to_markdown")
    superseded = [r for r in history if r["superseded"]]
    current = [r for r in history if not r["superseded"]]
    assert len(superseded) == PAGES and {r["status"] for r in superseded} == {"failed"}
    assert {r["config_hash"] for r in superseded} == {first["config_hash"]}
    assert len(current) == PAGES and {(r["status"], r["config_hash"]) for r in current} == {("completed", new_hash)}
    replay_run = next(r["run_id"] for r in replay["runs"] if r["kind"] == "replay")
    for key in storage_of(store, first["id"], "markdown/"):
        sidecar = store.metadata(f"executions/{first['id']}/{key}")
        assert (sidecar["config_hash"], sidecar["dagster_run_id"]) == (new_hash, replay_run)
    assert len(storage_of(store, first["id"], "markdown/html_to_markdown/")) == PAGES


def test_a_replay_leaves_no_stale_objects_and_keeps_history(pipelines, env):
    db, store = env
    pipelines(max_tokens=32)  # many small segments
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}")
        fetched = site.total_requests()
        small = storage_of(store, first["id"], "markdown/smart_segmenter/")
        markdown = storage_of(store, first["id"], "markdown/html_to_markdown/")
        pipelines(max_tokens=4096)  # one segment per page or close to it
        replay = as_json("execution", "replay", first["id"], "--from-stage", "markdown/smart_segmenter")
        assert site.total_requests() == fetched

    large = storage_of(store, first["id"], "markdown/smart_segmenter/")
    assert len(large) < len(small)  # the earlier segments that the replay did not rewrite are gone
    current = [r for r in rows(db, first["id"], "smart_segmenter") if not r["superseded"]]
    assert {k for r in current for k in r["output_keys"]} == {f"executions/{first['id']}/{k}" for k in large}
    assert replay["replay"]["deleted_objects"] == len(small) and replay["replay"]["superseded_rows"] == PAGES
    assert storage_of(store, first["id"], "markdown/html_to_markdown/") == markdown  # upstream of the replay: untouched
    listed = as_json("execution", "list")
    assert next(e for e in listed if e["id"] == first["id"])["replays"] == 1
    shown = run("execution", "get", first["id"])
    assert "replays" in shown.stdout and "markdown/smart_segmenter" in shown.stdout


def test_a_replay_into_a_route_makes_a_child_execution_reading_the_parents_objects(pipelines, env):
    db, store = env
    with demo_site() as site:
        parent = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "parent")
        fetched = site.total_requests()
        same = as_json("execution", "replay", "parent", "--from-stage", "web_content_storage", "--to-route", "markdown")
        other = as_json("execution", "replay", "parent", "--from-stage", "scrape/web_content_storage",
                        "--to-route", "plain_markdown", "--pipeline", "remark")
        assert site.total_requests() == fetched

    parent_pages = {r["id"] for r in rows(db, parent["id"], "web_content_storage")}
    for child, pipeline, route in ((same, "site_md", "markdown"), (other, "remark", "plain_markdown")):
        assert child["status"] == "completed" and child["parent_id"] == parent["id"] and child["pipeline"] == pipeline
        assert child["origin"] == {"kind": "replay", "parent": parent["id"], "from_stage": "scrape/web_content_storage", "to_route": route}
        first_stage = rows(db, child["id"], "html_to_markdown")
        assert len(first_stage) == PAGES and {r["status"] for r in first_stage} == {"completed"}
        assert {r["parent_lineage_id"] for r in first_stage} == parent_pages  # lineage crosses executions
        assert {r["stage"] for r in rows(db, child["id"])} <= {"html_to_markdown", "smart_segmenter"}
    assert len(storage_of(store, same["id"], "markdown/smart_segmenter/")) >= PAGES
    same_md = storage_of(store, same["id"], "markdown/html_to_markdown/")
    assert same_md == storage_of(store, parent["id"], "markdown/html_to_markdown/")  # same code, same input
    plain = store.get(next(o.key for o in store.list(f"executions/{other['id']}/plain_markdown/html_to_markdown/")))
    assert b"](http" not in plain  # the other pipeline's config ran: links kept as text

    got = as_json("execution", "get", "parent")
    assert set(got["children"]) == {same["id"], other["id"]} and len(got["replays"]) == 2
    listed = {e["id"]: e for e in as_json("execution", "list")}
    assert listed[same["id"]]["parent_id"] == parent["id"] and listed[same["id"]]["origin"]["kind"] == "replay"
    assert f"replay of {parent['id']}" in run("execution", "list").stdout


def test_replay_refuses_when_inputs_are_missing_and_changes_nothing(pipelines, env, factflow_home):
    db, store = env
    with demo_site() as site:
        done = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
    prefix = f"executions/{done['id']}/scrape/web_content_storage/"
    victim = store.keys(prefix)[3]
    (factflow_home / "storage" / victim).unlink()  # one page is gone from storage (its sidecar stays)

    def snapshot():
        return storage_of(store, done["id"]), [(r["id"], r["superseded"], r["status"]) for r in rows(db, done["id"])]

    before = snapshot()
    refused = run("execution", "replay", "t", "--from-stage", "html_to_markdown")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert f"1 of {PAGES} object(s) are missing under {prefix}" in refused.stderr and victim in refused.stderr
    refused_child = run("execution", "replay", "t", "--from-stage", "web_content_storage", "--to-route", "markdown")
    assert refused_child.exit_code == 1 and prefix in refused_child.stderr

    store.delete_prefix(prefix)
    empty = run("execution", "replay", "t", "--from-stage", "html_to_markdown")
    assert empty.exit_code == 1 and f"nothing is stored under {prefix}" in empty.stderr
    assert snapshot()[1] == before[1] and as_json("execution", "list")[0]["id"] == done["id"]  # no child was made

    for args, words in [
        (("nope", "--from-stage", "html_to_markdown"), "no execution with id or tag 'nope'"),
        (("t", "--from-stage", "html_to_markdwn"), "has no stage 'html_to_markdwn' (stages: scrape/sitemap_parser"),
        (("t", "--from-stage", "markdown/nope"), "has no stage markdown/nope"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "nowhere"), "has no route 'nowhere'"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "nowhere", "--pipeline", "remark"), "runs no route 'nowhere'"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "x", "--pipeline", "absent"), "no pipeline 'absent'"),
    ]:
        result = run("execution", "replay", *args)
        assert result.exit_code == 1 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert snapshot()[1] == before[1]


def start_in_subprocess(sitemap: str, tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "execution", "start", "site_md", "--set", f"sitemap_url={sitemap}", "--tag", tag],
        cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for(condition, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scraping_midway(db: FactflowDatabase, tag: str):
    """True once the scraper has finished some pages and has others in flight (rows flushed)."""

    def check() -> bool:
        record = db.executions.find_by_tag(tag)
        if record is None:
            return False
        statuses = Counter(r["status"] for r in rows(db, record.id, "web_scraper"))
        return statuses["completed"] >= 3 and statuses["pending"] >= 1

    return check


def test_a_killed_execution_resumes_to_exactly_the_storage_of_an_uninterrupted_run(pipelines, env):
    db, store = env
    with demo_site(latency=0.4) as site:
        sitemap = site.url("/sitemap_index.xml")
        clean = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}", "--tag", "clean")
        requests_clean = page_requests(site)

        process = start_in_subprocess(sitemap, "killed")
        try:
            wait_for(scraping_midway(db, "killed"), what="the scraper midway")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        interrupted = as_json("execution", "get", "killed")
        assert interrupted["status"] == "interrupted" and "is gone" in interrupted["error"]
        assert interrupted["runs"][0]["status"] == "FAILURE"  # Dagster no longer shows it running

        resumed = as_json("execution", "resume", "killed")
        requests_both = page_requests(site) - requests_clean

    assert resumed["status"] == "completed"
    assert storage_of(store, resumed["id"]) == storage_of(store, clean["id"])  # same keys, same content
    assert {s["stage"]: (s["completed"], s["failed"]) for s in resumed["stages"]} == {
        s["stage"]: (s["completed"], s["failed"]) for s in clean["stages"]
    }
    # pages the killed run fetched were not fetched again; the ones in flight at the kill (and
    # the broken ones: a failed message is tried again) were
    killed_run = next(r["run_id"] for r in resumed["runs"] if r["kind"] == "start")
    finished_before = [r for r in rows(db, resumed["id"], "web_scraper") if r["dagster_run_id"] == killed_run and r["status"] == "completed"]
    assert finished_before and all(requests_both[path_of(r)] == 1 for r in finished_before)
    assert set(requests_both) == set(requests_clean)
    cut = [r for r in rows(db, resumed["id"]) if r["status"] == "cancelled"]
    assert cut and {r["error_class"] for r in cut} == {"RunInterrupted"}
    for row in cut:
        later = [r for r in rows(db, resumed["id"], row["stage"]) if r["message_id"] == row["message_id"] and r["status"] == "completed"]
        assert len(later) == 1 and later[0]["attempt"] == row["attempt"] + 1
    kinds = [r["kind"] for r in resumed["runs"]]
    assert kinds == ["resume", "start"]
    assert run("execution", "resume", "killed").exit_code == 1  # completed: nothing to resume


def test_cancel_stops_gracefully_and_resume_finishes(pipelines, env):
    db, store = env
    with demo_site(latency=1.0) as site:  # slow enough that the cancel (seen within one 2 s heartbeat) lands mid-scrape
        sitemap = site.url("/sitemap_index.xml")
        process = start_in_subprocess(sitemap, "stopped")
        try:
            wait_for(scraping_midway(db, "stopped"), what="the scraper midway")
            cancelled = as_json("execution", "cancel", "stopped")
            assert process.wait(timeout=60) == 1
        finally:
            if process.poll() is None:
                process.kill()
        assert "Traceback" not in process.stderr.read()
        got = as_json("execution", "get", "stopped")
        assert cancelled["status"] == got["status"] == "cancelled" and got["runs"][0]["status"] == "CANCELED"
        record_rows = rows(db, got["id"])
        assert not [r for r in record_rows if r["status"] in ("pending", "cancelled")]  # in-flight messages finished
        scraped = [r for r in record_rows if r["stage"] == "web_scraper"]
        assert 3 <= len(scraped) < PAGES + BROKEN  # it stopped taking new pages
        fetched = {path_of(r) for r in scraped if r["status"] == "completed"}
        before = page_requests(site)

        resumed = as_json("execution", "resume", "stopped")
        fetched_by_resume = page_requests(site) - before
        clean = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}")

    assert resumed["status"] == "completed"
    assert not set(fetched_by_resume) & fetched  # pages fetched before the cancel are not fetched again
    assert sum(fetched_by_resume.values()) == PAGES + BROKEN - len(fetched)  # the rest once each
    assert storage_of(store, resumed["id"]) == storage_of(store, clean["id"])
    assert run("execution", "cancel", "stopped").exit_code == 1  # not running: nothing to cancel
