"""Bad input at the CLI: one line on stderr, a non-zero exit, never a traceback."""

import pytest
from click.testing import CliRunner

from cli.main import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env)


def assert_one_line_error(result, fragment, exit_code=1):
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_unknown_execution(factflow_home):
    assert_one_line_error(run("execution", "get", "01nosuchexecution"), "no execution with id or tag '01nosuchexecution'")
    assert_one_line_error(run("execution", "wait", "nope"), "no execution")


def test_unknown_pipeline_names_the_known_ones(factflow_home):
    assert_one_line_error(run("execution", "start", "nope"), "no pipeline 'nope'")
    result = run("execution", "start", "nope")
    assert "web_to_markdown" in result.stderr


def test_an_invalid_pipeline_is_refused_with_its_first_finding(factflow_home, tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("version: 1\nroutes: []\ninit_message: {route: a}\n")
    monkeypatch.setenv("FACTFLOW_PIPELINES_DIR", str(tmp_path))
    assert_one_line_error(run("execution", "start", "bad"), "E111")


def test_malformed_set_is_a_usage_error(factflow_home):
    result = run("execution", "start", "web_to_markdown", "--set", "no-equals-sign")
    assert result.exit_code == 2 and "expected key=value" in result.stderr and "Traceback" not in result.output


def test_a_reused_tag_is_refused(factflow_home, monkeypatch):
    from factflow_assets.config import load_pipeline
    from factflow_assets.engine.executions import create_execution
    from factflow_assets.settings import Settings
    from resources.database import FactflowDatabase

    settings = Settings.from_env()
    create_execution(FactflowDatabase(settings.database_url), load_pipeline(settings.pipelines_dir, "web_to_markdown"), tag="nightly")
    assert_one_line_error(run("execution", "start", "web_to_markdown", "--tag", "nightly"), "tag 'nightly' already names execution")


@pytest.mark.parametrize(
    "url, reason",
    [
        ("postgresql+psycopg2://nobody@127.0.0.1:1/nothing", "database is unreachable"),
        ("sqlite:////proc/no/such/dir/f.db", "cannot create the folder of the SQLite database"),
    ],
)
def test_an_unreachable_database_is_one_line(factflow_home, url, reason, monkeypatch):
    monkeypatch.setenv("FACTFLOW_DATABASE_URL", url)
    assert_one_line_error(run("execution", "list"), reason)


def test_validate_on_a_missing_path(factflow_home):
    result = run("config", "validate", "/no/such/file.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr
