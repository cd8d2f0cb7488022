"""Shared fixtures: an isolated factflow home per test, local websites, a PostgreSQL database.

Servers bind 127.0.0.1 only and are stopped by the fixture that started them. PostgreSQL tests
skip with a reason when no server answers, unless FACTFLOW_REQUIRE_SERVICES=1 (set by .ci/run),
which makes a missing server a failure.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from e2e_harness import PIPELINE, REMARK

from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.settings import Settings
from resources.database import FactflowDatabase, dispose_engines
from resources.storage import ObjectStore

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SITEMAP_CORPUS = FIXTURES / "sitemaps"  # copied from ../shared/corpora/sitemaps with the licences

POSTGRES_ADMIN_URL = os.environ.get("FACTFLOW_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the end-to-end tests marked slow (CI does)")


def pytest_collection_modifyitems(config, items):
    """Slow end-to-end tests run only with --slow, so a plain `pytest` stays quick."""
    if config.getoption("--slow"):
        return
    kept = [item for item in items if "slow" not in item.keywords]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if "slow" in item.keywords])
        items[:] = kept


def services_required() -> bool:
    return os.environ.get("FACTFLOW_REQUIRE_SERVICES") == "1"


def require_corpus(path: Path) -> Path:
    """`path` under the shared corpora; skip without it, except under FACTFLOW_REQUIRE_SERVICES=1
    (CI), where a missing corpus fails like a missing PostgreSQL."""
    if not path.exists():
        message = f"the corpus is not at {path} (set FACTFLOW_CORPORA to the shared corpora folder)"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    return path


#: The storage combinations a test marked `backends` runs over: database-storage.
BACKENDS = ("sqlite-file", "sqlite-s3", "postgres-file", "postgres-s3")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("backends") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request) -> str:
    """`database-storage` for this test: one of BACKENDS for tests marked `backends`, else the
    embedded default."""
    return getattr(request, "param", "sqlite-file")


@pytest.fixture
def factflow_home(tmp_path, monkeypatch, backend, request) -> Path:
    """A fresh FACTFLOW_HOME for one test: SQLite and files under it, or, as `backend` says, a
    fresh PostgreSQL database (Dagster's storage and factflow's) and a fresh S3 bucket."""
    home = tmp_path / "factflow-home"
    with backend_environment(monkeypatch, backend, home, request):
        yield home


#: Variables that point factflow somewhere; a test starts with none of them set.
LOCATION_VARIABLES = (
    "FACTFLOW_STORAGE_URI", "FACTFLOW_DATABASE_URL", "DAGSTER_HOME", "FACTFLOW_PIPELINES_DIR", "FACTFLOW_SETTINGS",
    "FACTFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL",
)


@contextmanager
def backend_environment(patch: pytest.MonkeyPatch, backend: str, home: Path, request):
    """Set the environment of one factflow home on `backend`; drop its database on the way out."""
    patch.setenv("FACTFLOW_HOME", str(home))
    for name in LOCATION_VARIABLES:
        patch.delenv(name, raising=False)
    database, storage = backend.split("-")
    with ExitStack() as cleanup:
        if database == "postgres":
            url = cleanup.enter_context(postgres_database(request.getfixturevalue("postgres_admin_url")))
            patch.setenv("FACTFLOW_DATABASE_URL", url)
        if storage == "s3":
            endpoint = request.getfixturevalue("s3_endpoint")
            patch.setenv("FACTFLOW_STORAGE_URI", f"s3://{new_bucket(endpoint)}/factflow")
            patch.setenv("FACTFLOW_S3_ENDPOINT_URL", endpoint)
        try:
            yield
        finally:
            dispose_engines()


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A real S3 endpoint on a loopback port (moto's server mode), reached through s3fs like MinIO.
    Credentials are the fake ones moto accepts, set for the whole session (subprocesses too)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        if services_required():
            pytest.fail(f"S3 tests are required (FACTFLOW_REQUIRE_SERVICES=1) but moto is missing: {error}")
        pytest.skip(f"no moto server for the S3 tests: {error}")
    for name, value in S3_CREDENTIALS.items():
        os.environ[name] = value
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "factflow-test", "AWS_SECRET_ACCESS_KEY": "factflow-test", "AWS_DEFAULT_REGION": "us-east-1"}


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"factflow-{secrets.token_hex(6)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


#: The smallest valid pipeline, for tests that need execution rows to hang lineage rows on.
TINY_PIPELINE = "version: 1\nroutes:\n  - name: r\n    adapters:\n      - type: url_expander\ninit_message:\n  route: r\n  payload: {urls: []}\n"


def executions_exist(db: FactflowDatabase, *execution_ids: str) -> None:
    """Record these executions (a tiny pipeline's), as a run would before writing lineage rows:
    the database's foreign keys refuse rows of an execution it does not know."""
    from factflow_assets.config import validate_text
    from factflow_assets.engine.executions import create_execution

    pipeline = validate_text(TINY_PIPELINE, "tiny").pipeline
    for execution_id in execution_ids:
        if db.executions.get(execution_id) is None:
            create_execution(db, pipeline, execution_id=execution_id)


@pytest.fixture
def settings(factflow_home) -> Settings:
    return Settings.from_env()


@pytest.fixture
def site():
    """A factory of started SiteServers: `server = site({"/": Resource(b"...")})`."""
    started: list[SiteServer] = []

    def start(routes: dict | None = None, latency: float = 0.0) -> SiteServer:
        server = SiteServer(routes or {}, latency=latency).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def modules_loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after running `code` (a cost a process
    must not carry: what it imports it pays for on every start)."""
    import subprocess
    import sys

    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in {modules!r} if m in sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def html_page(title: str, body: str = "<p>content</p>", lang: str = "en") -> Resource:
    return Resource(f"<!DOCTYPE html><html lang='{lang}'><head><title>{title}</title></head><body>{body}</body></html>".encode())


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as error:  # noqa: BLE001 (any failure means: no server here)
        if services_required():
            pytest.fail(f"PostgreSQL is required (FACTFLOW_REQUIRE_SERVICES=1) but unreachable: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_ADMIN_URL}: {error}")
    finally:
        engine.dispose()
    return POSTGRES_ADMIN_URL


@contextmanager
def postgres_database(admin_url: str):
    """A fresh PostgreSQL database, dropped afterwards (connections still open are cut)."""
    from sqlalchemy import create_engine, text

    name = f"factflow_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_admin_url) -> str:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    with postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """The factflow database on each backend it supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'factflow.db'}"
        dispose_engines()
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def pipelines(factflow_home, tmp_path, monkeypatch):
    """A pipelines directory; `write(max_tokens=..., content_types=[...])` (re)writes site_md.yaml."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    monkeypatch.setenv("FACTFLOW_PIPELINES_DIR", str(folder))
    (folder / "remark.yaml").write_text(REMARK)

    def write(max_tokens: int = 512, content_types: tuple[str, ...] = ("text/html",)) -> None:
        kept = "[" + ", ".join(content_types) + "]"
        (folder / "site_md.yaml").write_text(PIPELINE.format(max_tokens=max_tokens, content_types=kept))

    write()
    write.folder = folder
    return write


@pytest.fixture
def env(factflow_home):
    settings = Settings.from_env()
    return FactflowDatabase(settings.database_url), ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
