"""Retention: `execution delete` and `execution prune` remove executions everywhere they live.

After a delete no object is under the execution's prefix, no row of the factflow database names
it, Dagster has neither its partition nor a run of it, and every other execution is exactly as it
was. A delete that stops part-way finishes when run again; a running execution, or one a child
still reads, is refused.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_harness import PROJECT_ROOT, as_json, rows, run, storage_of
from sqlalchemy import or_, select

from factflow_assets.demo.server import Resource
from resources.db_schema import deliveries, executions, frontier, lineage, replays, runners, stage_progress

pytestmark = [pytest.mark.slow, pytest.mark.backends]


@pytest.fixture
def one_page(site):
    """A site of one page behind a sitemap: an execution costs about a second."""
    return site({
        "/sitemap.xml": Resource(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{{base_url}}/p</loc></url></urlset>',
                                 content_type="application/xml"),
        "/p": Resource(b"<html><head><title>P</title></head><body><article><h1>P</h1><p>" + b"Words in a paragraph. " * 40 + b"</p></article></body></html>"),
    })


def start(server, tag: str) -> dict:
    return as_json("execution", "start", "site_md", "--set", f"sitemap_url={server.url('/sitemap.xml')}", "--tag", tag)


def names_anywhere(db, execution_id: str) -> list[str]:
    """The tables of the factflow database that still have a row naming the execution."""
    checks = {
        "executions": executions.c.id == execution_id,
        "lineage": lineage.c.execution_id == execution_id,
        "replays": or_(replays.c.execution_id == execution_id, replays.c.target_execution_id == execution_id),
        "runners": runners.c.execution_id == execution_id,
        "stage_progress": stage_progress.c.execution_id == execution_id,
        "deliveries": deliveries.c.execution_id == execution_id,
        "frontier": frontier.c.execution_id == execution_id,
    }
    tables = {
        "executions": executions, "lineage": lineage, "replays": replays, "runners": runners, "stage_progress": stage_progress,
        "deliveries": deliveries, "frontier": frontier,
    }
    with db.engine.connect() as conn:
        return [name for name, where in checks.items() if conn.execute(select(tables[name]).where(where)).first() is not None]


def dagster_knows(execution_id: str) -> tuple[bool, int]:
    from factflow_assets.assets.runs import execution_runs
    from factflow_assets.operations.instance import dagster_instance
    from factflow_assets.settings import Settings

    instance = dagster_instance(Settings.from_env())
    return instance.has_dynamic_partition("site_md", execution_id), len(execution_runs(instance, execution_id))


def test_delete_removes_an_execution_everywhere_and_leaves_the_others_as_they_were(pipelines, env, one_page):
    db, store = env
    kept, gone = start(one_page, "kept"), start(one_page, "gone")
    kept_objects, kept_rows = storage_of(store, kept["id"]), rows(db, kept["id"])

    dry = as_json("execution", "delete", "gone", "--dry-run")
    [planned] = dry["executions"]
    assert dry["deleted"] == [] and planned["objects"] == len(list(store.objects(f"executions/{gone['id']}/"))) > 0 and planned["runs"] == 1
    assert planned["lineage_rows"] == len(rows(db, gone["id"]))
    refused = run("execution", "delete", "gone")  # no --yes, and no terminal to ask
    assert refused.exit_code == 1 and "refusing to delete 1 execution(s)" in refused.stderr and refused.stderr.count("\n") == 1

    assert as_json("execution", "delete", "gone", "--yes")["deleted"] == [gone["id"]]
    assert list(store.objects(f"executions/{gone['id']}/")) == []
    assert names_anywhere(db, gone["id"]) == []
    assert dagster_knows(gone["id"]) == (False, 0)
    assert storage_of(store, kept["id"]) == kept_objects and rows(db, kept["id"]) == kept_rows  # untouched
    assert dagster_knows(kept["id"]) == (True, 1)
    missing = run("execution", "delete", "gone", "--yes")
    assert missing.exit_code == 1 and "no execution with id or tag 'gone'" in missing.stderr


def test_a_delete_stopped_part_way_says_so_and_finishes_when_run_again(pipelines, env, one_page, monkeypatch):
    db, store = env
    gone = start(one_page, "gone")

    from resources.retention_store import RetentionStore

    def database_lost(*args):
        raise ConnectionError("the database went away mid-delete")

    with monkeypatch.context() as patch:
        patch.setattr(RetentionStore, "delete_rows", database_lost)
        assert run("execution", "delete", "gone", "--yes").exit_code == 1
    half = as_json("execution", "get", "gone")
    assert half["status"] == "deleting" and "delete` again" in half["error"]
    assert list(store.objects(f"executions/{gone['id']}/")) == [] and dagster_knows(gone["id"]) == (False, 0)

    assert as_json("execution", "delete", "gone", "--yes")["deleted"] == [gone["id"]]
    assert names_anywhere(db, gone["id"]) == []


def test_a_prune_finishes_a_delete_left_half_done_whatever_its_filter(pipelines, env, one_page, monkeypatch):
    db, store = env
    half, kept = start(one_page, "half"), start(one_page, "kept")
    from resources.retention_store import RetentionStore

    def killed(*args):
        raise ConnectionError("the prune was killed here")

    with monkeypatch.context() as patch:
        patch.setattr(RetentionStore, "delete_rows", killed)
        assert run("execution", "prune", "--status", "completed", "--keep", "1", "--yes").exit_code == 1
    assert as_json("execution", "get", "half")["status"] == "deleting"
    again = as_json("execution", "prune", "--status", "completed", "--keep", "1", "--yes")  # "deleting" is not "completed"
    assert again["deleted"] == [half["id"]] and names_anywhere(db, half["id"]) == []
    assert [e["id"] for e in as_json("execution", "list")] == [kept["id"]]


def test_objects_another_prune_removed_first_are_gone_as_wanted(pipelines, env, one_page):
    _db, store = env
    gone = start(one_page, "gone")
    prefix = f"executions/{gone['id']}/"
    keys = [info.key for info in store.objects(prefix)]
    real_rm = store.fs.rm

    def raced(paths, *args, **kwargs):  # the other prune removes the first file just before this one does
        store.fs.rm_file(paths[0])
        return real_rm(paths, *args, **kwargs)

    store.fs.rm = raced
    try:
        assert store.delete_prefix(prefix) == len(keys)
        assert store.delete_keys(keys) == len(keys)  # all gone already: nothing to fail on
    finally:
        del store.fs.rm
    assert list(store.objects(prefix)) == []


def test_prune_keeps_exactly_the_newest_n(pipelines, env, one_page):
    db, _ = env
    made = [start(one_page, f"night-{n}")["id"] for n in range(4)]
    assert [e["execution_id"] for e in as_json("execution", "prune", "--pipeline", "site_md", "--keep", "2", "--dry-run")["executions"]] == sorted(
        made[:2], reverse=True
    )
    pruned = as_json("execution", "prune", "--pipeline", "site_md", "--keep", "2", "--yes")
    assert sorted(pruned["deleted"]) == sorted(made[:2])
    assert sorted(r["id"] for r in as_json("execution", "list")) == sorted(made[2:])
    assert run("execution", "prune", "--pipeline", "site_md").exit_code != 0  # it says what to keep, or refuses


def test_running_executions_and_parents_of_children_are_refused(pipelines, env, one_page):
    db, store = env
    parent = start(one_page, "parent")
    child = as_json("execution", "replay", "parent", "--from-stage", "web_content_storage", "--to-route", "markdown")
    refused = run("execution", "delete", "parent", "--yes")
    assert refused.exit_code == 1 and f"has child execution(s) {child['id']}" in refused.stderr
    assert as_json("execution", "get", "parent")["status"] == "completed"  # nothing changed

    queued = run("execution", "start", "site_md", "--detach", "--tag", "waiting", "--set", f"sitemap_url={one_page.url('/sitemap.xml')}")
    assert queued.exit_code == 0
    busy = run("execution", "delete", "waiting", "--yes")
    assert busy.exit_code == 1 and "is queued; cancel it" in busy.stderr

    both = as_json("execution", "delete", "parent", "--with-children", "--yes")
    assert both["deleted"] == [child["id"], parent["id"]]  # the child first: its rows point at its parent's
    assert names_anywhere(db, parent["id"]) == names_anywhere(db, child["id"]) == []


#: What the daemon does at a tick, in a process of its own as the daemon's would be: the tick records
#: the execution, the run materialises it; prints the execution id and its status.
SCHEDULED_TICK = """
from datetime import datetime, timezone
from dagster import build_schedule_context
from factflow_assets.assets.location import definitions_of
from factflow_assets.config import load_pipeline
from factflow_assets.operations.instance import dagster_instance
from factflow_assets.operations.launch import RunPlan, run_in_process
from factflow_assets.settings import Settings
from resources.dagster_resources import FactflowDatabaseResource
from resources.database import FactflowDatabase

settings = Settings.from_env()
db, instance = FactflowDatabase(settings.database_url), dagster_instance(settings)
schedule = definitions_of([load_pipeline(settings.pipelines_dir, "site_md")], settings).resolve_schedule_def("site_md_schedule")
context = build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(timezone.utc),
                                 resources={"database": FactflowDatabaseResource(url=settings.database_url)})
[request] = schedule.evaluate_tick(context).run_requests
ticked = db.executions.get(request.partition_key)
print(ticked.id, run_in_process(settings, db, instance, RunPlan(ticked, "schedule", ticked.config_hash)).status)
"""


def test_a_scheduled_execution_applies_the_yaml_retention_when_it_completes(pipelines, env, one_page):
    """The YAML's `retention: {keep: 2}` leaves the scheduled execution and the newest other one,
    and the parent that one reads."""
    db, store = env
    yaml_file = Path(os.environ["FACTFLOW_PIPELINES_DIR"]) / "site_md.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("http://127.0.0.1:1/unset.xml", one_page.url("/sitemap.xml")) + "schedule: {cron: '0 6 * * *'}\nretention: {keep: 2}\n"
    )
    older = [start(one_page, f"by-hand-{n}")["id"] for n in range(3)]
    parent = start(one_page, "read-by-a-child")["id"]
    child = as_json("execution", "replay", parent, "--from-stage", "web_content_storage", "--to-route", "markdown")["id"]

    done = subprocess.run([sys.executable, "-c", SCHEDULED_TICK], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ticked, status = done.stdout.split()
    assert status == "completed"

    left = {record.id for record in db.executions.recent(pipeline="site_md")}
    assert left == {ticked, child, parent}  # keep 2: the new one and the newest other; its parent stays for it
    for gone in older:
        assert names_anywhere(db, gone) == [] and list(store.objects(f"executions/{gone}/")) == [] and dagster_knows(gone) == (False, 0)


def test_watching_an_execution_deleted_meanwhile_says_so_in_one_line(pipelines, env, one_page, monkeypatch):
    from resources.storage import ObjectStore

    start(one_page, "gone")
    real_watch = ObjectStore.watch

    def watch_then_deleted(self, prefix, finished, interval=1.0):
        yield from list(real_watch(self, prefix, lambda: True, 0))[:1]
        assert run("execution", "delete", "gone", "--yes").exit_code == 0  # meanwhile, elsewhere
        assert finished()  # a deleted execution is not waited for

    monkeypatch.setattr(ObjectStore, "watch", watch_then_deleted)
    result = run("storage", "watch", "-e", "gone")
    assert result.exit_code == 1 and result.stderr.strip().endswith("was deleted while it was watched") and result.stderr.count("\n") == 1
