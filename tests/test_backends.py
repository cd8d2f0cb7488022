"""Production backends: configuration from a settings file, the generated Dagster instance, and
two executions at once in two processes on PostgreSQL + S3."""

import pytest
from e2e_harness import rows, start_in_subprocess

from factflow_assets.demo.site import demo_site
from factflow_assets.operations.instance import GENERATED_MARK, ensure_dagster_home
from factflow_assets.settings import Settings
from resources.errors import FactflowError


def test_a_settings_file_sets_what_the_environment_does_not(factflow_home, monkeypatch, tmp_path):
    factflow_home.mkdir(parents=True, exist_ok=True)
    (factflow_home / "settings.toml").write_text(
        'database_url = "postgresql+psycopg2://u:p@db:5432/f"\nstorage_uri = "s3://bucket/data"\n'
        f's3_endpoint_url = "http://minio:9000"\npipelines_dir = "{tmp_path}"\n'
    )
    settings = Settings.from_env()
    assert (settings.database_url, settings.storage_uri, settings.s3_endpoint_url) == ("postgresql+psycopg2://u:p@db:5432/f", "s3://bucket/data", "http://minio:9000")
    assert settings.pipelines_dir == tmp_path and settings.uses_postgres
    monkeypatch.setenv("FACTFLOW_STORAGE_URI", "file:///elsewhere")
    assert Settings.from_env().storage_uri == "file:///elsewhere"  # a variable beats the file

    (factflow_home / "settings.toml").write_text('databse_url = "x"\n')
    with pytest.raises(FactflowError, match="unknown setting 'databse_url'"):
        Settings.from_env()
    (factflow_home / "settings.toml").write_text("database_url = [\n")
    with pytest.raises(FactflowError, match="cannot read the settings file"):
        Settings.from_env()
    monkeypatch.setenv("FACTFLOW_SETTINGS", str(tmp_path / "absent.toml"))
    with pytest.raises(FactflowError, match="not a file"):
        Settings.from_env()


def test_the_dagster_instance_follows_the_database_and_hand_edits_are_kept(factflow_home, monkeypatch):
    settings = Settings.from_env()
    ensure_dagster_home(settings)
    written = (settings.dagster_home / "dagster.yaml").read_text()
    assert written.startswith(GENERATED_MARK) and "postgres_url" not in written
    monkeypatch.setenv("FACTFLOW_DATABASE_URL", "postgresql+psycopg2://u@127.0.0.1:5432/f")
    ensure_dagster_home(Settings.from_env())
    moved = (settings.dagster_home / "dagster.yaml").read_text()
    assert "postgres_url:\n      env: FACTFLOW_DATABASE_URL" in moved and "u@127.0.0.1" not in moved  # no URL in the file
    (settings.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # someone's own file
    monkeypatch.delenv("FACTFLOW_DATABASE_URL")
    ensure_dagster_home(Settings.from_env())
    assert (settings.dagster_home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
def test_two_executions_in_two_processes_write_disjoint_prefixes_and_their_own_lineage(pipelines, env, backend):
    db, store = env
    with demo_site(latency=0.2) as site:
        sitemap = site.url("/sitemap_index.xml")
        processes = [start_in_subprocess(sitemap, tag) for tag in ("left", "right")]
        try:
            codes = [process.wait(timeout=180) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
    assert codes == [0, 0], [p.stderr.read() for p in processes]
    left, right = (db.executions.find_by_tag(tag) for tag in ("left", "right"))
    assert left.status == right.status == "completed" and left.dagster_run_id != right.dagster_run_id
    assert left.started_at < right.finished_at and right.started_at < left.finished_at  # they ran at the same time

    stored = {}
    for record in (left, right):
        prefix = f"executions/{record.id}/"
        objects = list(store.objects(prefix))
        assert objects and all(store.metadata(o.key)["execution_id"] == record.id for o in objects)
        stored[record.id] = {o.key[len(prefix):] for o in objects}
        lineage_rows = rows(db, record.id)
        by_id = {r["id"]: r for r in lineage_rows}
        for row in lineage_rows:
            assert row["dagster_run_id"] == record.dagster_run_id and row["status"] in ("completed", "failed")
            assert all(key.startswith(prefix) for key in row["output_keys"])  # outputs in its own prefix only
            assert row["parent_lineage_id"] is None or row["parent_lineage_id"] in by_id  # chains stay inside
    assert stored[left.id] == stored[right.id]  # same site, same deterministic keys, each under its own prefix
    assert len(rows(db, left.id)) == len(rows(db, right.id))
