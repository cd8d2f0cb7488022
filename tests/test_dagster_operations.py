"""A run launched by Dagster's own CLI is a factflow operation too (architecture §2b).

`dagster asset materialize --select STAGE --partition E` is what the UI's "Materialize" does: no
factflow tag on the run, only the partition and the selection. On an execution that ran, it is a
replay of exactly that stage from storage: nothing fetched, the earlier rows superseded, the run
listed by `execution get` and the status following it. (The UI's own buttons are exercised over
GraphQL in test_ui.py.)
"""

import os
import subprocess
import sys

import pytest
from e2e_harness import as_json, rows, stages

from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
PAGES, _ = expected_pages()


def dagster_materialize(select: str, partition: str) -> subprocess.CompletedProcess:
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    return subprocess.run(
        [dagster, "asset", "materialize", "-m", "factflow_assets.definitions", "--select", select, "--partition", partition],
        cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )


def test_dagster_asset_materialize_of_a_stage_replays_it_from_storage(pipelines, env):
    db, _ = env
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
    fetched = site.total_requests()  # stopped: nothing could be fetched now

    done = dagster_materialize("site_md/markdown/html_to_markdown", first["id"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert site.total_requests() == fetched
    got = as_json("execution", "get", "t")
    [replay_run] = [r for r in got["runs"] if r["run_id"] != first["runs"][0]["run_id"]]
    assert got["status"] == "completed" and replay_run["kind"] == "replay" and replay_run["status"] == "SUCCESS"
    history = rows(db, first["id"], "html_to_markdown")
    assert sum(r["superseded"] for r in history) == PAGES
    assert {r["dagster_run_id"] for r in history if not r["superseded"]} == {replay_run["run_id"]}
    assert {r["superseded"] for r in rows(db, first["id"], "smart_segmenter")} == {False}  # exactly the stage selected
    assert stages(got) == stages(first)
    assert [(r["from_route"], r["from_stage"], r["superseded_rows"]) for r in got["replays"]] == [("scrape", "web_content_storage", PAGES)]


def test_a_subset_on_a_partition_without_an_execution_fails_saying_why(pipelines, env):
    from factflow_assets.operations.instance import dagster_instance
    from factflow_assets.settings import Settings

    dagster_instance(Settings.from_env()).add_dynamic_partitions("site_md", ["nothing-here"])
    done = dagster_materialize("site_md/markdown/html_to_markdown", "nothing-here")
    assert done.returncode != 0
    assert "partition nothing-here has no execution yet: materialise every stage of site_md to start one" in done.stderr
    db, _ = env
    assert db.executions.get("nothing-here") is None

