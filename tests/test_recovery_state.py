"""What replay, resume and cancel keep in the factflow database, on SQLite and PostgreSQL: runners
and their heartbeats, superseded and interrupted lineage rows, the replay record; and how a dead
run is told apart from a live one."""

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from factflow_assets.config import validate_file, validate_text
from factflow_assets.config.pipeline import StageRef
from factflow_assets.settings import SHIPPED_PIPELINES_DIR
from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import NotFoundError
from resources.replays_store import ReplayRecord
from resources.runners_store import STALE_AFTER, Runner
from tests.conftest import executions_exist
from tests.test_config_validation import VALID
from tests.test_database import lineage_row


@pytest.fixture
def db(database_url):
    database = FactflowDatabase(database_url)
    executions_exist(database, "e1", "child")
    return database


def runner(pid=None, host=None, age=timedelta(0)) -> Runner:
    return Runner("e1", host or socket.gethostname(), pid or os.getpid(), "run-1", utcnow() - age)


def test_a_runner_is_gone_when_its_pid_is_or_its_heartbeat_is_stale():
    assert runner().gone_because() is None  # this very process, beating now
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    assert "is gone" in runner(pid=int(finished.stdout)).gone_because()
    assert runner(host="elsewhere", pid=1).gone_because() is None  # another machine, recent beat: maybe alive
    stale = runner(host="elsewhere", pid=1, age=STALE_AFTER + timedelta(seconds=5)).gone_because()
    assert "has not reported for" in stale


def test_a_killed_child_not_yet_reaped_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert runner(pid=child.pid).gone_because() is None
        child.kill()
        deadline = utcnow() + timedelta(seconds=10)
        while runner(pid=child.pid).gone_because() is None and utcnow() < deadline:
            pass  # a zombie until reaped: /proc says so
        assert "is gone" in runner(pid=child.pid).gone_because()
    finally:
        child.kill()
        child.wait()


def test_heartbeats_upsert_one_row_per_execution(db):
    assert db.runners.get("e1") is None
    db.runners.beat("e1", "run-1")
    first = db.runners.get("e1")
    db.runners.beat("e1", "run-2")
    second = db.runners.get("e1")
    assert (first.pid, first.host, first.dagster_run_id) == (os.getpid(), socket.gethostname(), "run-1")
    assert second.dagster_run_id == "run-2" and second.heartbeat_at >= first.heartbeat_at
    assert second.heartbeat_at.tzinfo is not None


def test_supersede_marks_current_rows_of_the_given_stages_only(db):
    writer = db.lineage.writer()
    writer.start(lineage_row("a", "m1", status="completed"))
    writer.start(lineage_row("b", "m2", status="failed"))
    writer.start(lineage_row("c", "m1", stage="web_scraper", adapter_type="web_scraper"))
    writer.close()
    assert db.lineage.supersede("e1", [("scrape", "url_expander")]) == 2
    assert db.lineage.supersede("e1", [("scrape", "url_expander")]) == 0  # already history
    assert db.lineage.prior_invocations("e1", "scrape", "url_expander") == {}
    assert set(db.lineage.prior_invocations("e1", "scrape", "web_scraper")) == {"m1"}
    assert db.lineage.supersede("e1", []) == 0


def test_a_later_attempt_supersedes_the_earlier_one_in_the_same_write(db):
    writer = db.lineage.writer()
    writer.start(lineage_row("a1", "m1", status="failed"))
    writer.close()
    writer = db.lineage.writer()
    writer.start(lineage_row("a2", "m1", attempt=2), supersedes="a1")
    writer.finish("a2", status="completed", output_keys=["k"])
    writer.close()
    rows = {r["id"]: r for r in db.lineage_queries.rows("e1", include_superseded=True)}
    assert (rows["a1"]["superseded"], rows["a2"]["superseded"]) == (True, False)
    assert db.lineage_queries.failures("e1") == []  # the failure was retried and is history now
    assert {(r["status"], r["count"]) for r in db.lineage.stage_counts("e1")} == {("completed", 1)}


def test_rows_a_dead_run_left_pending_are_closed_as_interrupted(db):
    writer = db.lineage.writer()
    writer.start(lineage_row("p1", "m1", dagster_run_id="dead"))
    writer.start(lineage_row("p2", "m2", dagster_run_id="dead", status="completed"))
    writer.start(lineage_row("p3", "m3", dagster_run_id="other"))
    writer.close()
    assert db.lineage.close_interrupted("e1", "dead", "its process is gone") == 1
    closed = db.lineage_queries.require("p1")
    assert (closed["status"], closed["error_class"], closed["error_message"]) == ("cancelled", "RunInterrupted", "its process is gone")
    assert closed["finished_at"] is not None
    assert db.lineage_queries.require("p3")["status"] == "pending"
    assert db.lineage.close_interrupted("e1", "dead", "again") == 0


def test_replays_are_recorded_for_both_executions_they_involve(db):
    def replay(replay_id, target, to_route=None):
        return ReplayRecord(replay_id, "e1", "scrape", "web_scraper", to_route, target, "old", "new", 3, 5, utcnow())

    db.replays.add(replay("r1", "e1"))
    db.replays.add(replay("r2", "child", to_route="markdown"))
    assert [r.id for r in db.replays.involving("e1")] == ["r1", "r2"]
    assert [r.id for r in db.replays.involving("child")] == ["r2"]
    assert db.replays.counts_within(["e1", "child", "none"]) == {"e1": {"in_place": 1, "into_routes": 1}}  # r2 made the child
    assert db.replays.counts_within([]) == {}
    assert db.replays.involving("e1")[0].to_dict()["created_at"].endswith("+00:00")


def test_downstream_of_a_stage_crosses_into_the_routes_it_feeds():
    pipeline = validate_file(SHIPPED_PIPELINES_DIR / "web_to_markdown.yaml").pipeline
    names = lambda stages: [s.name for s in stages]  # noqa: E731
    assert names(pipeline.downstream_of(StageRef("sitemap_scraper", "web_content_storage"))) == [
        "web_content_storage", "html_to_markdown", "smart_segmenter"
    ]
    assert names(pipeline.downstream_of(StageRef("markdown_processor", "smart_segmenter"))) == ["smart_segmenter"]
    # what a replay from a stage runs: the stages after it, not the stage itself
    assert names(pipeline.stages_after(StageRef("sitemap_scraper", "web_scraper"))) == [
        "web_content_storage", "html_to_markdown", "smart_segmenter"
    ]
    assert names(pipeline.stages_after(StageRef("sitemap_scraper", "web_content_storage"))) == ["html_to_markdown", "smart_segmenter"]
    assert pipeline.stages_after(StageRef("markdown_processor", "smart_segmenter")) == []
    assert pipeline.find_stage("html_to_markdown").ref == pipeline.find_stage("markdown_processor/html_to_markdown").ref
    with pytest.raises(NotFoundError, match="has no stage 'nope'"):
        pipeline.find_stage("nope")


def test_a_stage_name_used_in_two_routes_must_be_qualified():
    text = VALID.replace("init_message:", "  - name: again\n    input: {route: scrape}\n    adapters:\n      - type: url_expander\ninit_message:")
    pipeline = validate_text(text, "twice").pipeline
    with pytest.raises(NotFoundError, match="several routes .* scrape/url_expander or again/url_expander"):
        pipeline.find_stage("url_expander")
    assert pipeline.find_stage("again/url_expander").route.name == "again"


def test_a_runner_row_from_an_earlier_run_says_nothing_about_a_newer_one():
    """A run the daemon launched has not beaten yet: the row left by an earlier in-process run
    (whose process is gone, of course) must not make it look interrupted."""
    from types import SimpleNamespace

    from factflow_assets.operations.status import _speaks_for

    now = utcnow()
    newest = SimpleNamespace(dagster_run=SimpleNamespace(run_id="run-2"), create_timestamp=now)
    assert _speaks_for(runner(), None)  # killed before Dagster recorded any run
    assert _speaks_for(Runner("e1", "h", 1, "run-2", now - timedelta(hours=1)), newest)  # about this run
    assert not _speaks_for(Runner("e1", "h", 1, "run-1", now - timedelta(seconds=5)), newest)  # an earlier run
    assert _speaks_for(Runner("e1", "h", 1, "run-3", now + timedelta(seconds=1)), newest)  # a run being created


def test_waiting_on_a_queued_execution_times_out_with_exit_2_and_cancel_drops_it(factflow_home):
    from click.testing import CliRunner

    from cli.main import cli
    from factflow_assets.engine.executions import create_execution
    from factflow_assets.settings import Settings

    db = FactflowDatabase(Settings.from_env().database_url)
    record = create_execution(db, validate_text(VALID, "demo").pipeline, status="queued", tag="waiting")
    waited = CliRunner().invoke(cli, ["execution", "wait", "waiting", "--timeout", "0.3", "--interval", "0.1"])
    assert waited.exit_code == 2 and f"execution {record.id} is still queued after 0.3 s" in waited.stderr
    cancelled = CliRunner().invoke(cli, ["execution", "cancel", "waiting", "--output", "json"])
    assert cancelled.exit_code == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"
    again = CliRunner().invoke(cli, ["execution", "cancel", "waiting"])
    assert again.exit_code == 1 and "is cancelled: nothing to cancel" in again.stderr
