"""The inspect commands against a real execution of the shipped pipeline over the demo website,
in table and JSON form: the operator's loop `lineage failures` → `lineage chain` → `storage get`.

One execution is shared by the module (a run takes seconds); `storage watch` gets its own
execution, run by another process while the test watches.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BACKENDS, backend_environment

from cli.main import cli
from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import PROJECT_ROOT, Settings
from resources.storage import SIDECAR_SUFFIX, ObjectStore

pytestmark = [pytest.mark.slow, pytest.mark.backends]
PAGES, BROKEN = expected_pages()
STAGES = ["sitemap_parser", "url_expander", "web_scraper", "web_content_storage", "html_to_markdown", "smart_segmenter"]


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    # no uncaught exception (a failed row's own traceback in `lineage get` output is data, not a crash)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def as_json(*args):
    result = invoke(*args, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module", params=BACKENDS)
def execution(tmp_path_factory, request):
    """(object store, execution id) of one completed demo execution, on each backend in turn."""
    home = tmp_path_factory.mktemp("inspect") / "home"
    with pytest.MonkeyPatch.context() as patch, backend_environment(patch, request.param, home, request), demo_site() as site:
        started = as_json("execution", "start", "web_to_markdown", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "inspected")
        assert started["status"] == "completed"
        settings = Settings.from_env()
        yield ObjectStore(settings.storage_uri, settings.s3_endpoint_url), started["execution_id"]


def test_storage_list_filters_by_route_and_stage_and_limits(execution):
    _store, execution_id = execution
    everything = as_json("storage", "list", "--execution", "inspected", "--limit", "100000")
    assert all(o["key"].startswith(f"executions/{execution_id}/") and o["size"] > 0 and o["modified"] for o in everything)
    assert not any(o["key"].endswith(SIDECAR_SUFFIX) for o in everything)
    pages = as_json("storage", "list", "-e", execution_id, "--stage", "web_content_storage")
    assert len(pages) == PAGES and all("/sitemap_scraper/web_content_storage/" in o["key"] for o in pages)
    markdown_route = as_json("storage", "list", "-e", execution_id, "--route", "markdown_processor")
    assert {o["key"].split("/")[3] for o in markdown_route} == {"html_to_markdown", "smart_segmenter"}
    limited = invoke("storage", "list", "-e", execution_id, "--limit", "3")
    assert len(limited.stdout.strip().splitlines()) == 1 + 3 and "showing the first 3 objects" in limited.stderr
    table = invoke("storage", "list", "-e", execution_id, "--stage", "web_content_storage").stdout
    assert table.splitlines()[0].split() == ["KEY", "SIZE", "WRITTEN"] and "KiB" in table


def test_storage_browse_goes_one_level_down_with_counts(execution):
    _store, execution_id = execution
    top = as_json("storage", "browse", f"executions/{execution_id}")
    total = len(as_json("storage", "list", "-e", execution_id, "--limit", "100000"))
    assert [f["prefix"].split("/")[2] for f in top["folders"]] == ["dataset", "markdown_processor", "sitemap_scraper"]
    assert sum(f["objects"] for f in top["folders"]) == total and top["objects"] == []
    stage = as_json("storage", "browse", f"executions/{execution_id}/sitemap_scraper/web_content_storage/")
    assert stage["folders"] == [] and len(stage["objects"]) == PAGES
    table = invoke("storage", "browse", f"executions/{execution_id}/").stdout
    assert "sitemap_scraper/" in table and "OBJECTS" in table


def test_storage_get_is_binary_safe_and_json_carries_text_and_metadata(execution, tmp_path):
    store, execution_id = execution
    key = as_json("storage", "list", "-e", execution_id, "--stage", "web_content_storage")[0]["key"]
    raw = invoke("storage", "get", key)
    assert raw.exit_code == 0 and raw.stdout_bytes == store.fs.cat_file(store.url(key))
    document = as_json("storage", "get", key)
    assert document["encoding"] == "text" and document["content"].encode() == raw.stdout_bytes
    assert document["metadata"]["key"] == key and document["metadata"]["content_type"].startswith("text/html")
    metadata = as_json("storage", "metadata", key)
    assert metadata == document["metadata"] and metadata["url"].startswith("http://127.0.0.1:")
    table = invoke("storage", "metadata", key).stdout
    assert "sha256" in table and metadata["sha256"] in table
    # a file written through a shell redirect: the bytes as stored
    out = tmp_path / "page.html"
    with out.open("wb") as sink:
        subprocess.run([sys.executable, "-m", "cli.main", "storage", "get", key], stdout=sink, check=True, cwd=PROJECT_ROOT, env=os.environ.copy())
    assert out.read_bytes() == raw.stdout_bytes


def test_storage_download_writes_objects_and_sidecars_as_folders(execution, tmp_path):
    store, execution_id = execution
    report = as_json("storage", "download", "inspected", "--output-dir", str(tmp_path / "copy"))
    stored = sorted(Path(path[len(store.root) + 1 :]) for path in store.fs.find(store.url(f"executions/{execution_id}/")))
    copied = sorted(p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert len(copied) == len(stored) == 2 * report["objects"]
    # each file named for what it holds, its sidecar beside it
    assert {p.suffix for p in copied if not p.name.endswith(SIDECAR_SUFFIX)} >= {".html", ".md", ".json", ".parquet"}
    assert {str(p).split(".")[0] for p in copied} == {str(p).split(".")[0] for p in stored}
    assert report["bytes"] == sum((tmp_path / "copy" / p).stat().st_size for p in copied if not p.name.endswith(SIDECAR_SUFFIX))
    again = invoke("storage", "download", execution_id, "-d", str(tmp_path / "again"))
    assert f"{report['objects']} objects and their sidecars" in again.stdout


def test_lineage_failures_then_chain_then_the_input_object(execution):
    """The debugging loop of the README: a failure, its chain, the message that went in."""
    _store, execution_id = execution
    failures = as_json("lineage", "failures", "--execution", execution_id)
    assert len(failures) == BROKEN
    assert {f["metadata"]["url"].rsplit("/", 1)[1] for f in failures} == {"legacy-api.html", "2023-roadmap.html"}
    assert {(f["stage"], f["error_class"]) for f in failures} == {("web_scraper", "HttpStatusError")}
    assert [f["id"] for f in as_json("lineage", "failures")] == [f["id"] for f in reversed(failures)]  # all: newest first
    table = invoke("lineage", "failures", "-e", "inspected").stdout
    assert "HttpStatusError" in table and "legacy-api.html" in table

    failed = failures[0]
    chain = as_json("lineage", "chain", failed["message_id"])  # a message id works where an id is asked
    assert [(r["stage"], r["depth"]) for r in chain["rows"]] == [("sitemap_parser", -2), ("url_expander", -1), ("web_scraper", 0)]
    tree = invoke("lineage", "chain", failed["id"]).stdout
    assert tree.index("sitemap_parser") < tree.index("url_expander") < tree.index("web_scraper")
    assert "└──" in tree and "◀" in tree and "HTTP 4" in tree

    expander = chain["rows"][1]
    (input_key,) = [k for k in expander["output_keys"] if k.endswith(failed["message_id"])]
    url_message = as_json("storage", "get", input_key)
    assert url_message["metadata"]["message_id"] == failed["message_id"] and failed["metadata"]["url"] in url_message["content"]


def test_lineage_chain_of_a_segment_key_reaches_back_to_the_init_message(execution):
    _store, execution_id = execution
    segment = as_json("storage", "list", "-e", execution_id, "--stage", "smart_segmenter")[0]["key"]
    chain = as_json("lineage", "chain", segment)
    assert [r["stage"] for r in chain["rows"]] == STAGES
    assert [r["depth"] for r in chain["rows"]] == [-5, -4, -3, -2, -1, 0]
    assert segment in chain["rows"][-1]["output_keys"]
    page = chain["rows"][2]
    down = as_json("lineage", "chain", page["id"])
    assert [r["stage"] for r in down["rows"] if r["depth"] > 0] == STAGES[3:]


def test_lineage_list_get_children_batch(execution):
    _store, execution_id = execution
    rows = as_json("lineage", "list", "--execution", execution_id, "--limit", "1000")
    assert len(rows) == 2 + (PAGES + BROKEN) + 3 * PAGES + 1  # the last: the dataset written from them
    assert rows[-1]["stage"] == "dataset"
    assert [r["started_at"] for r in rows] == sorted(r["started_at"] for r in rows)
    scraped = as_json("lineage", "list", "-e", execution_id, "--adapter", "web_scraper", "--status", "completed")
    assert len(scraped) == PAGES
    page = as_json("lineage", "list", "-e", execution_id, "--limit", "5", "--offset", "5")
    assert [r["id"] for r in page] == [r["id"] for r in rows[5:10]]
    markdown = as_json("lineage", "list", "-e", execution_id, "--route", "markdown_processor")
    assert {r["stage"] for r in markdown} == {"html_to_markdown", "smart_segmenter"}

    expander = next(r for r in rows if r["stage"] == "url_expander")
    children = as_json("lineage", "children", expander["id"])
    assert len(children) == PAGES + BROKEN and {c["parent_lineage_id"] for c in children} == {expander["id"]}
    one = as_json("lineage", "get", children[0]["id"])
    assert one["id"] == children[0]["id"] and "error_traceback" in one and one["dagster_run_id"]
    got = invoke("lineage", "get", children[0]["id"]).stdout
    assert "parent_lineage_id" in got and expander["id"] in got
    batch = as_json("lineage", "batch", children[0]["batch_id"])
    assert {r["stage"] for r in batch} == {"web_scraper"} and len(batch) == PAGES + BROKEN
    assert "web_scraper" in invoke("lineage", "batch", children[0]["batch_id"]).stdout
    table = invoke("lineage", "list", "-e", execution_id, "--status", "failed").stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "STAGE", "MESSAGE", "STATUS"] and "HttpStatusError" in table


def test_lineage_stats_per_stage(execution):
    _store, execution_id = execution
    stats = as_json("lineage", "stats", "--execution", execution_id)
    assert [s["stage"] for s in stats] == [*STAGES, "dataset"]
    scraper = stats[2]
    assert (scraper["count"], scraper["completed"], scraper["failed"]) == (PAGES + BROKEN, PAGES, BROKEN)
    assert 0 < scraper["p50_ms"] <= scraper["p95_ms"] <= scraper["max_ms"] and scraper["span_s"] > 0
    table = invoke("lineage", "stats", "-e", "inspected").stdout
    assert table.splitlines()[0].split()[:7] == ["ROUTE", "STAGE", "ADAPTER", "COUNT", "COMPLETED", "UNCHANGED", "FAILED"]


def test_storage_watch_follows_an_execution_run_by_another_process(factflow_home):
    """Every object the execution writes is printed once, lines arrive while it runs, and watch
    ends by itself when the execution does."""
    def factflow(*args):
        return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    with demo_site(latency=0.15) as site:
        sitemap = site.url("/sitemap_index.xml")
        runner = factflow("execution", "start", "web_to_markdown", "--tag", "watched", "--set", f"sitemap_url={sitemap}", "--output", "json")
        watcher = None
        try:
            deadline = time.monotonic() + 60
            while invoke("execution", "get", "watched").exit_code != 0:  # until the execution is recorded
                assert time.monotonic() < deadline and runner.poll() is None, runner.communicate()
                time.sleep(0.05)
            watcher = factflow("storage", "watch", "--execution", "watched", "--interval", "0.1", "--output", "json")
            keys, while_running = [], 0
            for line in watcher.stdout:
                keys.append(json.loads(line)["key"])
                while_running += runner.poll() is None
            assert watcher.wait(timeout=60) == 0, watcher.stderr.read()
            assert runner.wait(timeout=60) == 0, runner.stderr.read()
        finally:
            for process in (runner, watcher):
                if process is not None and process.poll() is None:
                    process.kill()
    stored = [o["key"] for o in as_json("storage", "list", "-e", "watched", "--limit", "100000")]
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(stored)
    assert while_running > 0  # it followed the execution, not just listed what was left
    assert "objects; execution" in watcher.stderr.read()


def test_pipeline_list_shows_the_routes_of_an_execution_that_ended(execution):
    _store, execution_id = execution
    routes = as_json("pipeline", "list", "--execution", "inspected")
    assert [(r["execution_id"], r["route"], r["state"]) for r in routes] == [
        (execution_id, "sitemap_scraper", "completed"),
        (execution_id, "markdown_processor", "completed"),
    ]
    scrape, markdown = routes
    assert (scrape["in_flight"], scrape["failed"], markdown["done"]) == (0, BROKEN, 2 * PAGES)
    assert execution_id in invoke("pipeline", "list", "-e", execution_id).stdout
    unknown = invoke("pipeline", "list", "--execution", "nope")
    assert unknown.exit_code == 1 and unknown.stderr.count("\n") == 1


def test_a_page_url_names_its_rows_where_an_id_is_asked(execution):
    _store, execution_id = execution
    page = next(r for r in as_json("lineage", "list", "-e", execution_id, "--adapter", "web_scraper", "--status", "completed"))
    url = page["metadata"]["url"]
    chain = as_json("lineage", "chain", url, "-e", execution_id)
    assert chain["lineage_id"] == page["id"]  # the page's fetch, and from it all that was made of it
    assert [r["stage"] for r in chain["rows"] if r["depth"] >= 0][:4] == STAGES[2:]
    assert as_json("lineage", "get", url)["id"] == page["id"]  # one execution has it: no --execution needed
    rows = as_json("lineage", "list", "-e", execution_id, "--url", url)
    assert [r["stage"] for r in rows][:4] == STAGES[2:] and {r["metadata"]["url"] for r in rows} == {url}
    missing = invoke("lineage", "chain", url + "?nowhere", "-e", execution_id)
    assert missing.exit_code == 1 and "no lineage row names the page" in missing.stderr and missing.stderr.count("\n") == 1


def test_config_show_prints_the_frozen_yaml_and_list_names_its_executions(execution):
    _store, execution_id = execution
    got = as_json("execution", "get", execution_id)
    listed = {c["config_hash"]: c for c in as_json("config", "list")}
    assert execution_id in listed[got["config_hash"]]["executions"] and listed[got["config_hash"]]["pipeline"] == "web_to_markdown"
    frozen = as_json("config", "show", "inspected")
    assert frozen["config_hash"] == got["config_hash"] and "routes:" in frozen["yaml"]
    assert as_json("config", "show", got["config_hash"][:8])["yaml"] == frozen["yaml"]
    shown = invoke("config", "show", execution_id).stdout
    assert shown.startswith(f"# config {got['config_hash']}") and frozen["yaml"].strip() in shown
    assert got["config_hash"][:12] in invoke("config", "list").stdout
    unknown = invoke("config", "show", "nothing-like-it")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "Error: no config hash, execution id or tag 'nothing-like-it'"
