"""The factflow database away in the middle of a run: nothing is lost, the run rides it out.

PostgreSQL stops taking connections (and drops the ones it has) while pages are
being fetched (fifteen seconds). The run slows instead of running ahead, keeps every lineage row (in memory and in a
journal), writes them when the database is back, and completes: every stored object has its
completed row, no row is left pending, and the terminal got one line when the outage began and one
when it ended. Dagster's own storage stays on SQLite here, so the outage is factflow's alone.
"""

import subprocess
import sys
import threading
import time

import pytest
from e2e_harness import PIPELINE, as_json, rows, scraping_midway, storage_of, wait_for
from sqlalchemy import create_engine, text

from factflow_assets.demo.site import demo_site, expected_pages
from factflow_assets.settings import PROJECT_ROOT
from resources.database import FactflowDatabase, dispose_engines
from resources.storage import ObjectStore

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PAGES, BROKEN = expected_pages()


def outage(admin_url: str, database: str, seconds: float) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": database})
        time.sleep(seconds)
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    admin.dispose()


def test_a_database_outage_mid_run_loses_no_row_and_the_run_completes(tmp_path, monkeypatch, postgres_url, postgres_admin_url):
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())  # no mark: kept, SQLite storage
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "site_md.yaml").write_text(PIPELINE.format(max_tokens=512, content_types="[text/html]"))
    for name, value in {
        "FACTFLOW_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "FACTFLOW_PIPELINES_DIR": str(pipelines),
        "FACTFLOW_DATABASE_URL": postgres_url, "FACTFLOW_DATABASE_OUTAGE_SECONDS": "120",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FACTFLOW_STORAGE_URI", raising=False)
    db = FactflowDatabase(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]

    with demo_site(latency=0.5) as site:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "outage"],
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for(scraping_midway(db, "outage"), what="the scraper midway", process=process)
            cut = threading.Thread(target=outage, args=(postgres_admin_url, database, 15.0))  # longer than any retry loop
            cut.start()
            cut.join()
            assert process.wait(timeout=180) == 0, process.stdout.read() + process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
        stderr = process.stderr.read()
    dispose_engines()

    db = FactflowDatabase(postgres_url)
    got = as_json("execution", "get", "outage")
    assert got["status"] == "completed"
    everything = rows(db, got["id"])
    assert not [r for r in everything if r["status"] in ("pending", "cancelled")]  # nothing left half-recorded
    store = ObjectStore((home / "storage").as_uri())
    stored = storage_of(store, got["id"])
    written = {
        key.split(f"executions/{got['id']}/", 1)[1]
        for r in everything
        if r["status"] == "completed" and not r["superseded"] and r["route"] != "dataset"
        for key in r["output_keys"]
    }
    assert set(stored) == written  # every stored object has the row that wrote it
    assert {s["stage"]: s["completed"] for s in got["stages"]}["smart_segmenter"] == PAGES
    assert stderr.count("is unreachable") == 1 and stderr.count("answers again") == 1, stderr
    assert "Traceback" not in stderr
    assert not list((home / "journal").glob("*.jsonl"))  # written, then let go


def terminate_repeatedly(admin_url: str, database: str, seconds: float, every: float = 0.5) -> int:
    """pg_terminate_backend on every connection to `database`, every `every` seconds for
    `seconds`: a failover, a bouncer restarting, an operator cleaning up. Returns how many."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    killed, end = 0, time.monotonic() + seconds
    with admin.connect() as conn:
        while time.monotonic() < end:
            killed += conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": database},
            ).scalar()
            time.sleep(every)
    admin.dispose()
    return killed


def test_connections_terminated_again_and_again_fail_nothing(tmp_path, monkeypatch, postgres_url, postgres_admin_url):
    """Dagster's storage on the same PostgreSQL (as factflow writes its dagster.yaml): the run's
    own reads and event writes, and factflow's, wait out connections the server keeps dropping."""
    home = tmp_path / "home"
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "site_md.yaml").write_text(PIPELINE.format(max_tokens=512, content_types="[text/html]"))
    for name, value in {"FACTFLOW_HOME": str(home), "FACTFLOW_PIPELINES_DIR": str(pipelines), "FACTFLOW_DATABASE_URL": postgres_url}.items():
        monkeypatch.setenv(name, value)
    for name in ("DAGSTER_HOME", "FACTFLOW_STORAGE_URI"):
        monkeypatch.delenv(name, raising=False)
    db = FactflowDatabase(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    killed = []

    with demo_site(latency=0.5) as site:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "storm"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(scraping_midway(db, "storm"), what="the scraper midway", process=process)
            storm = threading.Thread(target=lambda: killed.append(terminate_repeatedly(postgres_admin_url, database, 15.0)))
            storm.start()
            storm.join()
            assert process.wait(timeout=240) == 0, process.stdout.read() + process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
        stderr = process.stderr.read()
    dispose_engines()

    assert killed[0] > 10  # the storm hit the run's connections
    db = FactflowDatabase(postgres_url)
    got = as_json("execution", "get", "storm")
    assert got["status"] == "completed" and got["runs"][0]["status"] == "SUCCESS"
    everything = rows(db, got["id"])
    assert not [r for r in everything if r["status"] in ("pending", "cancelled")]
    store = ObjectStore((home / "storage").as_uri())
    written = {
        key.split(f"executions/{got['id']}/", 1)[1]
        for r in everything
        if r["status"] == "completed" and not r["superseded"] and r["route"] != "dataset"
        for key in r["output_keys"]
    }
    assert set(storage_of(store, got["id"])) == written
    assert {s["stage"]: s["completed"] for s in got["stages"]}["smart_segmenter"] == PAGES
    assert "Traceback" not in stderr and "[SQL:" not in stderr, stderr
