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


def test_a_tag_too_long_for_the_database_is_refused_up_front(factflow_home):
    assert_one_line_error(run("execution", "start", "web_to_markdown", "--tag", "t" * 129), "a tag has 1 to 128 characters; this one has 129")


@pytest.mark.parametrize(
    "setting, reason",
    [
        ("sitemap_url=http://[::1", "sitemap_url 'http://[::1' is not a URL"),
        ("sitemap_url=", "sitemap_url '' is empty"),
        ("sitemap_url=file:///etc/passwd", "is a file URL; only http and https are fetched"),
        ("sitemap_url=ftp://example.com/sitemap.xml", "is a ftp URL; only http and https are fetched"),
        ("routes.0.concurrency=64", "--set routes.0.concurrency: sitemap_scraper/sitemap_parser (sitemap_parser) reads only sitemap_url, url"),
    ],
)
def test_a_payload_the_first_stage_cannot_start_from_is_refused_before_anything_is_recorded(factflow_home, setting, reason):
    from factflow_assets.settings import Settings
    from resources.database import FactflowDatabase

    assert_one_line_error(run("execution", "start", "web_to_markdown", "--set", setting), reason)
    assert FactflowDatabase(Settings.from_env().database_url).executions.recent() == []


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
    assert result.exit_code == 1 and result.stderr == "Error: no file or directory at /no/such/file.yaml\n"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("storage", "list", "--execution", "nope"), "no execution with id or tag 'nope'"),
        (("storage", "watch", "--execution", "nope"), "no execution with id or tag 'nope'"),
        (("storage", "download", "nope", "--output-dir", "out"), "no execution with id or tag 'nope'"),
        (("lineage", "list", "--execution", "nope"), "no execution with id or tag 'nope'"),
        (("lineage", "stats", "--execution", "nope"), "no execution with id or tag 'nope'"),
        (("lineage", "failures", "--execution", "nope"), "no execution with id or tag 'nope'"),
        (("lineage", "get", "01m86jd8b6599pw62m470h"), "no lineage row or message '01m86jd8b6599pw62m470h'"),
        (("lineage", "chain", "page-0123456789abcdef"), "no lineage row or message 'page-0123456789abcdef'"),
        (("lineage", "children", "nope"), "no lineage row or message 'nope'"),
        (("lineage", "batch", "nope"), "no lineage rows in batch 'nope'"),
        (("lineage", "get", "executions/e1/r/s/missing"), "no object at executions/e1/r/s/missing"),
        (("storage", "get", "executions/e1/r/s/missing"), "no object at executions/e1/r/s/missing"),
        (("storage", "metadata", "executions/e1/r/s/missing"), "no object at executions/e1/r/s/missing"),
        (("storage", "browse", "executions/none"), "nothing is stored under executions/none"),
        (("storage", "get", "executions/../../etc/passwd"), "'.' or '..' segment"),
        (("storage", "get", "/etc/passwd"), "must be relative, not absolute"),
        (("storage", "metadata", "executions/a\x00b"), "NUL byte"),
        (("lineage", "chain", "executions/a/../b"), "'.' or '..' segment"),
        (("storage", "browse", "executions/a b"), "characters outside"),
    ],
)
def test_inspect_commands_on_unknown_or_malformed_input(factflow_home, args, fragment):
    assert_one_line_error(run(*args), fragment)


def test_inspect_commands_name_the_routes_stages_and_adapters_an_execution_has(factflow_home):
    from factflow_assets.config import load_pipeline
    from factflow_assets.engine.executions import create_execution
    from factflow_assets.settings import Settings
    from resources.database import FactflowDatabase

    settings = Settings.from_env()
    create_execution(FactflowDatabase(settings.database_url), load_pipeline(settings.pipelines_dir, "web_to_markdown"), tag="t")
    assert_one_line_error(run("lineage", "list", "-e", "t", "--route", "nope"), "has no route 'nope'; it has: markdown_processor, sitemap_scraper")
    assert_one_line_error(run("lineage", "list", "-e", "t", "--adapter", "nope"), "has no adapter 'nope'")
    assert_one_line_error(run("storage", "list", "-e", "t", "--stage", "nope"), "has no stage 'nope'")
    assert_one_line_error(
        run("storage", "list", "-e", "t", "--route", "sitemap_scraper", "--stage", "html_to_markdown"),
        "route sitemap_scraper of execution",
    )
    bad_status = run("lineage", "list", "-e", "t", "--status", "bogus")
    assert bad_status.exit_code == 2 and "Invalid value for '--status'" in bad_status.stderr and "Traceback" not in bad_status.output


def test_unreachable_storage_is_one_line(factflow_home, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {
        "FACTFLOW_STORAGE_URI": "s3://factflow/data", "FACTFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    assert_one_line_error(run("storage", "browse"), "storage is unreachable or failing: EndpointConnectionError")
    assert_one_line_error(run("storage", "metadata", "executions/e1/r/s/m"), "storage is unreachable or failing")


def test_unreachable_database_for_lineage_is_one_line(factflow_home, monkeypatch):
    monkeypatch.setenv("FACTFLOW_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/nothing")
    assert_one_line_error(run("lineage", "failures"), "database is unreachable")
    assert_one_line_error(run("lineage", "chain", "some-id"), "database is unreachable")


def test_an_error_names_the_root_cause_a_library_wrapped():
    from resources.errors import error_text

    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
        except OSError as cause:
            raise RuntimeError("All connection attempts failed") from cause
    except RuntimeError as error:
        assert error_text(error) == "All connection attempts failed (ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 9))"
    assert error_text(ValueError("plain")) == "plain" and error_text(KeyError()) == "KeyError"


def test_a_database_file_this_user_may_not_write_is_read_and_writes_are_refused_in_one_line(tmp_path, monkeypatch):
    """A SQLite file handed over read-only (tests run as root, who may write anything, so the
    permission check is what is faked): reading commands work, a writing one says why it cannot."""
    from resources import database
    from tests.conftest import LOCATION_VARIABLES

    for variable in LOCATION_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FACTFLOW_HOME", str(tmp_path))
    assert run("pipeline", "pause", "sitemap_scraper").exit_code == 0  # a database with a row in it
    database.dispose_engines()
    monkeypatch.setattr(database, "_writable", lambda path: False)
    try:
        listed = run("pipeline", "list", "--output", "json")
        assert listed.exit_code == 0, listed.output
        assert "paused" in listed.stdout
        assert_one_line_error(run("pipeline", "resume", "sitemap_scraper"), "the factflow database is read-only here")
    finally:
        database.dispose_engines()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("execution", "start", "--bogus"), "No such option '--bogus'. (see: "),
        (("execution", "start"), "Missing argument 'PIPELINE'."),
        (("nosuchgroup",), "No such command 'nosuchgroup'. (see: "),
        (("lineage", "list", "--limit", "0"), "Invalid value for '--limit'"),
    ],
)
def test_usage_errors_are_one_line_naming_where_help_is(factflow_home, args, fragment):
    result = run(*args)
    assert_one_line_error(result, fragment, exit_code=2)
    assert " --help)" in result.stderr  # where help is, however the program is called


def test_a_port_outside_the_range_is_refused_before_anything_is_recorded(factflow_home):
    result = run("execution", "start", "web_to_markdown", "--set", "sitemap_url=http://127.0.0.1:99999/sitemap.xml")
    assert_one_line_error(result, "has port 99999, outside 1-65535")
    assert "ExceptionGroup" not in result.output
    assert run("execution", "list", "--output", "json").stdout.strip() == "[]"
