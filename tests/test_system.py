"""`factflow system health|metrics`: each probe finds what is wrong, exit codes follow, secrets
never show, metrics agree with lineage and storage."""

import json

import pytest
from click.testing import CliRunner
from e2e_harness import REMARK, rows

from cli.main import cli
from factflow_assets.demo.site import demo_site
from resources.storage import ObjectStore

SCHEDULED = REMARK + "schedule: {cron: '*/5 * * * *'}\n"


def health(*args) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["system", "health", *args, "--output", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    report = json.loads(result.stdout)
    return result.exit_code, report


def probes(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["probes"]}


def test_a_fresh_home_is_healthy_and_the_storage_probe_leaves_nothing_behind(pipelines, settings):
    code, report = health()
    assert (code, report["overall"]) == (0, "healthy")
    assert {name: p["status"] for name, p in probes(report).items()} == {
        name: "ok" for name in ("pipelines", "dagster runs", "dagster event log", "dagster schedules", "dagster daemon", "factflow database", "object storage")
    }
    assert "not needed" in probes(report)["dagster daemon"]["detail"]
    assert "debug" not in report and "seconds" not in report["probes"][0]
    assert list(ObjectStore(settings.storage_uri).objects("_health/")) == []
    assert not list((settings.home / "storage").rglob("*.partial"))


def test_an_invalid_pipeline_and_a_schedule_without_daemon_degrade_health(pipelines, tmp_path):
    folder = tmp_path / "pipelines"
    (folder / "remark.yaml").write_text(SCHEDULED)
    (folder / "broken.yaml").write_text("version: 1\nroutes: []\n")
    code, report = health()
    assert (code, report["overall"]) == (1, "degraded")
    found = probes(report)
    assert found["pipelines"]["status"] == "degraded" and "1 of 3 pipeline(s) invalid" in found["pipelines"]["detail"]
    assert "broken.yaml" in found["pipelines"]["detail"]
    assert found["dagster daemon"]["status"] == "degraded"
    assert "needed for schedules of remark" in found["dagster daemon"]["detail"]
    table = CliRunner().invoke(cli, ["system", "health"])
    assert table.exit_code == 1 and "factflow is degraded" in table.stdout


def test_a_pipeline_that_renders_pages_has_its_browser_reported(pipelines, tmp_path):
    from factflow_assets.adapters.web_crawler import find_browser
    from factflow_assets.settings import SHIPPED_PIPELINES_DIR

    rendered = (SHIPPED_PIPELINES_DIR / "rendered_web_to_markdown.yaml").read_text()
    (tmp_path / "pipelines" / "rendered.yaml").write_text(rendered)
    browser = probes(health()[1])["browser"]
    if find_browser() is not None:
        assert browser["status"] == "ok" and "Chromium" in browser["detail"] and find_browser() in browser["detail"]
    without = rendered.replace("pages: 4", "pages: 4\n          executable_path: no-such-chromium")
    (tmp_path / "pipelines" / "rendered.yaml").write_text(without)
    code, report = health()  # nobody runs it: a warning line, the system healthy (exit 0 in probes)
    browser = probes(report)["browser"]
    assert (code, report["overall"]) == (0, "healthy") and browser["status"] == "warning"
    assert "rendered" in browser["detail"] and "install the chromium package" in browser["detail"]
    (tmp_path / "pipelines" / "rendered.yaml").write_text(without + "schedule: {cron: '0 3 * * *'}\n")
    code, report = health()  # a schedule will run it: degraded
    browser = probes(report)["browser"]
    assert code == 1 and browser["status"] == "degraded" and "rendered has a schedule" in browser["detail"]


def test_unwritable_storage_and_an_unreachable_database_are_unhealthy_with_secrets_masked(pipelines, factflow_home, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FACTFLOW_STORAGE_URI", (blocker / "storage").as_uri())
    monkeypatch.setenv("FACTFLOW_DATABASE_URL", "postgresql+psycopg2://factflow:hunter2@127.0.0.1:1/factflow?connect_timeout=2")
    result = CliRunner().invoke(cli, ["system", "health", "--debug", "--output", "json"])
    assert result.exit_code == 2 and "hunter2" not in result.output
    report = json.loads(result.stdout)
    found = probes(report)
    assert report["overall"] == "unhealthy"
    assert found["object storage"]["status"] == "failed" and "Error" in found["object storage"]["detail"]
    assert found["factflow database"]["status"] == "failed" and "OperationalError" in found["factflow database"]["detail"]
    assert found["factflow database"]["debug"]["url"] == "postgresql+psycopg2://factflow:***@127.0.0.1:1/factflow?connect_timeout=2"
    assert found["dagster runs"]["status"] == "failed"  # Dagster's storage follows the database to PostgreSQL
    assert found["pipelines"]["status"] == "ok"  # one subsystem down does not hide the others
    assert all(p["seconds"] >= 0 for p in report["probes"]) and report["debug"]["versions"]["dagster"].startswith("1.13")
    table = CliRunner().invoke(cli, ["system", "health", "--debug"])
    assert table.exit_code == 2 and "hunter2" not in table.output and "factflow:***@" in table.stdout and "ms" in table.stdout


@pytest.mark.slow
def test_metrics_agree_with_lineage_and_storage(pipelines, env):
    db, store = env
    with demo_site() as site:
        done = CliRunner().invoke(cli, ["execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--output", "json"])
    execution_id = json.loads(done.stdout)["id"]
    result = CliRunner().invoke(cli, ["system", "metrics", "--output", "json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["executions_by_status"] == {"completed": 1}
    assert metrics["runs"] == {"queued": 0, "in_progress": 0} and metrics["throughput"] == []
    lineage_rows = rows(db, execution_id)
    by_stage = {(m["route"], m["stage"]): m for m in metrics["messages"]}
    for row in lineage_rows:
        stage = by_stage[(row["route"], row["stage"])]
        assert stage["processed"] == stage["processed_last_hour"] == sum(1 for r in lineage_rows if r["stage"] == row["stage"])
        assert stage["failed"] == sum(1 for r in lineage_rows if r["stage"] == row["stage"] and r["status"] == "failed")
    stored = list(store.objects(f"executions/{execution_id}/"))
    assert metrics["storage"] == [
        {"execution_id": execution_id, "pipeline": "site_md", "status": "completed", "objects": len(stored), "bytes": sum(o.size for o in stored)}
    ]
    assert metrics["storage_by_pipeline"] == [
        {"pipeline": "site_md", "executions": 1, "objects": len(stored), "bytes": sum(o.size for o in stored)}
    ]
    table = CliRunner().invoke(cli, ["system", "metrics"])
    assert "web_scraper" in table.stdout and "completed 1" in table.stdout and "storage per pipeline" in table.stdout


def test_migrate_brings_a_new_database_to_the_newest_revision_then_says_it_is_there(factflow_home):
    from resources.migrate import HEAD

    first = CliRunner().invoke(cli, ["system", "migrate"])
    assert first.exit_code == 0 and f"migrated from no revision to revision {HEAD}" in first.stdout
    again = json.loads(CliRunner().invoke(cli, ["system", "migrate", "--output", "json"]).stdout)
    assert (again["revision_before"], again["revision"]) == (HEAD, HEAD)
