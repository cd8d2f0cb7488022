"""The stage loop without Dagster: outputs and lineage, failures as rows, retries, re-runs."""

import json
import time
from textwrap import dedent

import pytest

from factflow_assets.adapters import (
    ADAPTERS,
    Adapter,
    AdapterConfig,
    Emit,
    Message,
    PermanentError,
)
from factflow_assets.config import validate_text
from factflow_assets.config.pipeline import Stage
from factflow_assets.engine.inputs import InitInput, StoredInput
from factflow_assets.engine.stage_runner import run_stage
from factflow_assets.engine.stage_state import FaultBudgets, StageControl, StageJob
from factflow_assets.ids import new_batch_id
from resources.database import FactflowDatabase
from resources.http import new_http_client
from resources.storage import ObjectStore, stage_prefix
from tests.conftest import executions_exist, html_page

PIPELINE = dedent(
    """\
    version: 1
    routes:
      - name: scrape
        concurrency: 4
        error_handling: {retries: 2, retry_delay: 0.01}
        adapters:
          - type: url_expander
          - type: web_scraper
            config: {backoff: 0.01, retries: 0, respect_robots: false, rate_limit: {initial_rps: 100, max_rps: 200}}
          - type: web_content_storage
    init_message:
      route: scrape
      payload: {urls: []}
    """
)


class Flaky(Adapter):
    """Fails `fail_times` times per message with a transient error, then echoes it."""

    type = "flaky"
    calls: dict = {}

    class config_model(AdapterConfig):
        fail_times: int = 0
        permanent: bool = False

    async def process(self, message: Message) -> list[Emit]:
        count = Flaky.calls[message.id] = Flaky.calls.get(message.id, 0) + 1
        if self.config.permanent:
            raise PermanentError("never works")
        if count <= self.config.fail_times:
            raise ConnectionError(f"transient failure {count}")
        return [Emit(body=message.body, content_type=message.content_type)]


class Harness:
    def __init__(self, tmp_path, text=PIPELINE):
        self.pipeline = validate_text(text, "p").pipeline
        self.store = ObjectStore((tmp_path / "storage").as_uri())
        self.db = FactflowDatabase(f"sqlite:///{tmp_path / 'f.db'}")
        executions_exist(self.db, "e1", "e2")

    def run(self, stage_name, payload=None, execution_id="e1", config_hash=None):
        stage = next(s for s in self.pipeline.stages if s.name == stage_name)
        if stage.upstream is None:
            inputs = InitInput(stage.route.name, payload or {})
        else:
            inputs = StoredInput(self.store, stage_prefix(execution_id, stage.upstream.route, stage.upstream.stage))
        job = StageJob(execution_id, stage, config_hash or self.pipeline.config_hash, "run-1", new_batch_id())
        return run_stage(job, inputs, self.store, self.db, new_http_client)

    def rows(self, stage, execution_id="e1"):
        """Every lineage row of a stage, every column (traceback included)."""
        queries = self.db.lineage_queries
        listed = queries.rows(execution_id, stage=stage, include_superseded=True, limit=100_000)
        return [queries.require(row["id"]) for row in listed]


@pytest.fixture
def harness(tmp_path):
    yield Harness(tmp_path)
    from resources.database import dispose_engines

    dispose_engines()


def test_a_route_end_to_end_with_outputs_sidecars_and_linked_lineage(harness, site):
    server = site({"/a": html_page("A"), "/b": html_page("B")})
    urls = [server.url("/a"), server.url("/b"), server.url("/missing")]

    expanded = harness.run("url_expander", {"urls": urls})
    assert (expanded.messages_in, expanded.messages_out) == (1, 3)
    scraped = harness.run("web_scraper")
    assert (scraped.messages_in, scraped.messages_out, scraped.failed) == (3, 2, 1)
    stored = harness.run("web_content_storage")
    assert (stored.messages_in, stored.messages_out) == (2, 2)

    keys = harness.store.keys(stage_prefix("e1", "scrape", "web_content_storage"))
    assert len(keys) == 2
    page = harness.store.metadata(keys[0])
    fetched = harness.store.metadata(stage_prefix("e1", "scrape", "web_scraper") + page["parent_message_id"])
    storage_row = next(r for r in harness.rows("web_content_storage") if r["id"] == page["lineage_id"])
    assert storage_row["parent_lineage_id"] == fetched["lineage_id"]  # the chain runs through sidecars and rows
    assert storage_row["output_keys"] == [page["key"]] and storage_row["output_hash"] == page["sha256"]
    assert page["title"] in ("A", "B") and page["url"].startswith(server.base_url)

    failed = [r for r in harness.rows("web_scraper") if r["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["error_class"] == "HttpStatusError" and "404" in failed[0]["error_message"]
    assert "Traceback" in failed[0]["error_traceback"] and failed[0]["metadata"]["url"] == server.url("/missing")


def test_a_rerun_skips_finished_messages_and_redoes_only_what_is_missing(harness, site):
    server = site({f"/p{i}": html_page(f"P{i}") for i in range(5)})
    harness.run("url_expander", {"urls": [server.url(f"/p{i}") for i in range(5)]})
    first = harness.run("web_scraper")
    assert first.messages_out == 5 and server.total_requests() == 5

    again = harness.run("web_scraper")
    assert (again.reused, again.messages_out, again.failed) == (5, 5, 0)
    assert server.total_requests() == 5  # nothing fetched twice
    assert len(harness.rows("web_scraper")) == 5  # and no new lineage rows

    lost = harness.store.keys(stage_prefix("e1", "scrape", "web_scraper"))[0]
    harness.store.delete_prefix(lost)
    harness.store.fs.rm(f"{harness.store.root}/{lost}.meta.json")
    repaired = harness.run("web_scraper")
    assert (repaired.reused, repaired.messages_out) == (4, 5)
    assert server.total_requests() == 6
    assert max(r["attempt"] for r in harness.rows("web_scraper")) == 2
    (again_done,) = [r for r in harness.rows("web_scraper") if r["attempt"] == 2]
    redone = [r for r in harness.rows("web_scraper") if r["message_id"] == again_done["message_id"]]
    # the later attempt replaces the earlier one, which stays as history
    assert sorted((r["attempt"], r["superseded"]) for r in redone) == [(1, True), (2, False)]


def test_a_rerun_writes_over_old_keys_and_deletes_only_what_it_did_not_write_again(harness, site):
    """A replay supersedes a stage's rows and runs it again: objects it writes again keep their
    keys; once every input went through, the ones it did not write again are deleted."""
    server = site({f"/p{i}": html_page(f"P{i}") for i in range(3)})
    harness.run("url_expander", {"urls": [server.url(f"/p{i}") for i in range(3)]})
    first = harness.run("web_scraper")
    assert (first.messages_out, first.stale_deleted) == (3, 0)
    scraped = stage_prefix("e1", "scrape", "web_scraper")
    before = {key: harness.store.metadata(key)["written_at"] for key in harness.store.keys(scraped)}

    harness.db.lineage.supersede("e1", [("scrape", "url_expander"), ("scrape", "web_scraper")])
    expanded = harness.run("url_expander", {"urls": [server.url(f"/p{i}") for i in range(2)]})  # one page fewer
    assert (expanded.messages_out, expanded.stale_deleted) == (2, 1)  # the third URL's message is gone
    again = harness.run("web_scraper")
    assert (again.messages_in, again.messages_out, again.stale_deleted) == (2, 2, 1)
    after = {key: harness.store.metadata(key)["written_at"] for key in harness.store.keys(scraped)}
    assert set(after) < set(before) and all(after[key] > before[key] for key in after)  # rewritten in place
    current = [r for r in harness.rows("web_scraper") if not r["superseded"]]
    assert sorted(k for r in current for k in r["output_keys"]) == sorted(after)


def test_a_stage_whose_input_vanished_deletes_nothing_its_rows_name(harness, site):
    """Without a replay superseding its rows, a stage run again over an input that lost objects
    (a bucket emptied, a prefix deleted) must not turn the lost input into lost outputs."""
    server = site({f"/p{i}": html_page(f"P{i}") for i in range(3)})
    harness.run("url_expander", {"urls": [server.url(f"/p{i}") for i in range(3)]})
    harness.run("web_scraper")
    scraped = stage_prefix("e1", "scrape", "web_scraper")
    before = harness.store.keys(scraped)
    harness.store.delete_prefix(stage_prefix("e1", "scrape", "url_expander"))
    again = harness.run("web_scraper")
    assert (again.messages_in, again.stale_deleted) == (0, 0)
    assert harness.store.keys(scraped) == before


def test_a_stopped_stage_deletes_nothing(harness, site):
    server = site({f"/p{i}": html_page(f"P{i}") for i in range(3)})
    harness.run("url_expander", {"urls": [server.url(f"/p{i}") for i in range(3)]})
    harness.run("web_scraper")
    harness.db.lineage.supersede("e1", [("scrape", "web_scraper")])
    stage = next(s for s in harness.pipeline.stages if s.name == "web_scraper")
    control = StageControl()
    control.stop.set()  # cancelled before it took anything: what is stored stays for the resume
    job = StageJob("e1", stage, harness.pipeline.config_hash, "run-2", new_batch_id())
    inputs = StoredInput(harness.store, stage_prefix("e1", "scrape", "url_expander"))
    stopped = run_stage(job, inputs, harness.store, harness.db, new_http_client, control)
    assert (stopped.not_started, stopped.stale_deleted) == (3, 0)
    assert len(harness.store.keys(stage_prefix("e1", "scrape", "web_scraper"))) == 3


def test_a_message_whose_content_changed_under_the_same_id_is_processed_again(harness, site):
    """The skip rule matches the input's hash, not only its id: an upstream object rewritten with
    other content (the same message id) is not "already done"."""
    server = site({"/a": html_page("A"), "/b": html_page("B")})
    harness.run("url_expander", {"urls": [server.url("/a")]})
    harness.run("web_scraper")
    [key] = harness.store.keys(stage_prefix("e1", "scrape", "url_expander"))
    sidecar = harness.store.metadata(key)
    kept = {k: v for k, v in sidecar.items() if k not in ("key", "content_type", "size", "sha256", "written_at")}
    harness.store.put(key, json.dumps({"url": server.url("/b")}).encode(), "application/json", kept)

    again = harness.run("web_scraper")
    assert (again.reused, again.messages_out) == (0, 1)
    assert (server.requests["/a"], server.requests["/b"]) == (1, 1)  # the new content was fetched
    rows = sorted(harness.rows("web_scraper"), key=lambda r: r["attempt"])
    assert [(r["attempt"], r["superseded"], r["message_id"]) for r in rows] == [
        (1, True, sidecar["message_id"]), (2, False, sidecar["message_id"])
    ]


def test_an_unreadable_input_is_a_failed_row_not_a_crashed_stage(harness, site):
    server = site({"/a": html_page("A"), "/b": html_page("B")})
    harness.run("url_expander", {"urls": [server.url("/a"), server.url("/b")]})
    torn = harness.store.keys(stage_prefix("e1", "scrape", "url_expander"))[0]
    harness.store.fs.pipe_file(f"{harness.store.root}/{torn}.meta.json", b'{"key": "trunc')
    summary = harness.run("web_scraper")
    assert (summary.messages_in, summary.messages_out, summary.failed) == (2, 1, 1)
    (failed,) = [r for r in harness.rows("web_scraper") if r["status"] == "failed"]
    assert failed["message_id"] == torn.rsplit("/", 1)[1] and "unfinished write" in failed["error_message"]


def test_a_changed_config_hash_reprocesses(harness, site):
    server = site({"/p": html_page("P")})
    harness.run("url_expander", {"urls": [server.url("/p")]})
    harness.run("web_scraper")
    rerun = harness.run("web_scraper", config_hash="another-config")
    assert rerun.reused == 0 and server.total_requests() == 2


def test_route_retries_transient_errors_but_not_permanent_ones(tmp_path, monkeypatch):
    monkeypatch.setitem(ADAPTERS, "flaky", Flaky)
    Flaky.calls.clear()
    text = PIPELINE.replace("      - type: web_scraper\n", "      - type: flaky\n        config: {fail_times: 2}\n      - type: web_scraper\n")
    harness = Harness(tmp_path, text)
    harness.run("url_expander", {"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]})
    summary = harness.run("flaky")
    assert (summary.messages_out, summary.failed) == (2, 0)
    assert set(Flaky.calls.values()) == {3}  # two failures, then success, per message

    Flaky.calls.clear()
    permanent = Harness(tmp_path / "p", text.replace("{fail_times: 2}", "{permanent: true}"))
    permanent.run("url_expander", {"urls": ["http://127.0.0.1:9/a"]})
    summary = permanent.run("flaky")
    assert summary.failed == 1 and set(Flaky.calls.values()) == {1}
    (row,) = permanent.rows("flaky")
    assert row["status"] == "failed" and row["error_class"] == "PermanentError"


def test_messages_ids_are_deterministic_across_executions(harness, site):
    server = site({"/p": html_page("P")})
    for execution in ("e1", "e2"):
        harness.run("url_expander", {"urls": [server.url("/p")]}, execution_id=execution)
    ids = [[k.rsplit("/", 1)[1] for k in harness.store.keys(stage_prefix(e, "scrape", "url_expander"))] for e in ("e1", "e2")]
    assert ids[0] == ids[1] and ids[0][0].startswith("p-")


def test_a_storage_write_failing_is_retried_then_becomes_a_failed_row(harness, monkeypatch):
    """Two failed writes of one object are retried away; a write that never lands within the
    storage budget fails that message only, and the stage goes on."""
    urls = [f"http://example.com/{name}" for name in ("a", "b", "never")]
    real_put = ObjectStore.put
    failures: dict[str, int] = {}

    def flaky_put(store, key, data, content_type, metadata):
        if b"/never" in data or failures.get(key, 0) < 2:
            failures[key] = failures.get(key, 0) + 1
            raise OSError(f"disk hiccup {failures[key]}")
        return real_put(store, key, data, content_type, metadata)

    harness.run("url_expander", {"urls": urls})
    monkeypatch.setattr(ObjectStore, "put", flaky_put)
    summary = run_flaky_in_place_of_the_scraper(harness, monkeypatch, storage_seconds=1.0)

    assert (summary.messages_in, summary.messages_out, summary.failed) == (3, 2, 1)
    rows = {r["metadata"]["url"].rsplit("/", 1)[1]: r for r in harness.rows("web_scraper")}
    assert rows["a"]["status"] == rows["b"]["status"] == "completed"
    assert rows["never"]["status"] == "failed" and rows["never"]["error_class"] == "OSError"
    assert len(harness.store.keys(stage_prefix("e1", "scrape", "web_scraper"))) == 2


def test_storage_away_for_seconds_holds_the_stage_and_fails_nothing(harness, monkeypatch):
    """Every write fails for two seconds (a full disk, a bucket away): within the storage budget
    the stage waits and then writes every message; nothing fails."""
    urls = [f"http://example.com/{n}" for n in range(6)]
    harness.run("url_expander", {"urls": urls})
    real_put, healed_at = ObjectStore.put, time.monotonic() + 2.0

    def full_disk_for_a_while(store, *args):
        if time.monotonic() < healed_at:
            raise OSError(28, "No space left on device")
        return real_put(store, *args)

    monkeypatch.setattr(ObjectStore, "put", full_disk_for_a_while)
    summary = run_flaky_in_place_of_the_scraper(harness, monkeypatch, storage_seconds=30)
    assert (summary.messages_out, summary.failed) == (6, 0)
    assert {r["status"] for r in harness.rows("web_scraper")} == {"completed"}


def run_flaky_in_place_of_the_scraper(harness, monkeypatch, storage_seconds: float):
    """The `flaky` adapter run as the web_scraper stage over what url_expander stored, with this
    storage budget; the test's patches undone after."""
    stage = next(s for s in harness.pipeline.stages if s.name == "web_scraper")
    echo = Stage(stage.route, stage.index, stage.name, "flaky", Flaky.config_model(), stage.upstream)
    Flaky.calls = {}
    monkeypatch.setitem(ADAPTERS, "flaky", Flaky)
    job = StageJob("e1", echo, harness.pipeline.config_hash, "run-1", new_batch_id())
    inputs = StoredInput(harness.store, stage_prefix("e1", "scrape", "url_expander"))
    summary = run_stage(job, inputs, harness.store, harness.db, new_http_client, budgets=FaultBudgets(storage_seconds=storage_seconds))
    monkeypatch.undo()
    return summary


def test_a_rewrite_that_fails_leaves_the_old_object_and_no_partial_file(tmp_path, monkeypatch):
    store = ObjectStore((tmp_path / "s").as_uri())
    key = "executions/e/r/s/m"
    store.put(key, b"old", "text/plain", {})  # it exists: a rewrite goes through a partial file

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("resources.storage.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put(key, b"new", "text/plain", {})
    monkeypatch.undo()
    assert store.get(key) == b"old"
    assert not [p for p in (tmp_path / "s").rglob("*") if p.name.endswith(".partial")]
    (tmp_path / "s" / "executions" / "e" / "r" / "s" / "m.123-456.partial").write_bytes(b"half")  # a killed writer's
    assert store.remove_partials("executions/e/") == 1 and store.get(key) == b"old"


def test_the_database_away_for_a_moment_loses_no_lineage_row(harness, monkeypatch):
    """Lineage flushes that fail are retried with the rows kept; the rows land once it is back."""
    from sqlalchemy.exc import OperationalError

    from resources.lineage_store import LineageWriter

    real_write = LineageWriter._write
    outage = {"left": 3}

    def write_or_fail(writer, *args):
        if outage["left"]:
            outage["left"] -= 1
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        return real_write(writer, *args)

    monkeypatch.setattr(LineageWriter, "_write", write_or_fail)
    monkeypatch.setattr("resources.lineage_store.time.sleep", lambda seconds: None)
    summary = harness.run("url_expander", {"urls": ["http://example.com/a", "http://example.com/b"]})
    assert outage["left"] == 0 and summary.messages_out == 2
    (row,) = harness.rows("url_expander")
    assert row["status"] == "completed" and row["output_count"] == 2


def test_an_unreachable_bucket_is_waited_out_on_reads_and_writes(harness, monkeypatch):
    """S3 unreachable for two seconds (botocore's EndpointConnectionError, which is no OSError):
    reading inputs and writing outputs wait, within the storage budget; nothing fails."""
    from botocore.exceptions import EndpointConnectionError

    urls = [f"http://example.com/{n}" for n in range(6)]
    harness.run("url_expander", {"urls": urls})
    real_put, real_metadata, healed_at = ObjectStore.put, ObjectStore.metadata, time.monotonic() + 2.0

    def away(real):
        def call(store, *args):
            if time.monotonic() < healed_at:
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket")
            return real(store, *args)

        return call

    monkeypatch.setattr(ObjectStore, "put", away(real_put))
    monkeypatch.setattr(ObjectStore, "metadata", away(real_metadata))
    summary = run_flaky_in_place_of_the_scraper(harness, monkeypatch, storage_seconds=30)
    assert (summary.messages_out, summary.failed) == (6, 0)


def test_what_counts_as_storage_failing_and_what_as_an_answer():
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    from resources.errors import NotFoundError
    from resources.storage import is_storage_fault

    def client_error(status, code):
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    for fault in (OSError(28, "No space left on device"), TimeoutError(), EndpointConnectionError(endpoint_url="http://x"),
                  ConnectTimeoutError(endpoint_url="http://x"), client_error(503, "SlowDown"), client_error(500, "InternalError")):
        assert is_storage_fault(fault), fault
    for answer in (FileNotFoundError("gone"), NotFoundError("no object"), client_error(403, "AccessDenied"), ValueError("bad")):
        assert not is_storage_fault(answer), answer
