"""Shared fixtures: an isolated factflow home per test, local websites, a PostgreSQL database.

Servers bind 127.0.0.1 only and are stopped by the fixture that started them. PostgreSQL tests
skip with a reason when no server answers, unless FACTFLOW_REQUIRE_SERVICES=1 (set by .ci/run),
which makes a missing server a failure.
"""

from __future__ import annotations

import os
import secrets
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


@pytest.fixture
def factflow_home(tmp_path, monkeypatch) -> Path:
    """A fresh FACTFLOW_HOME (SQLite database, file storage, Dagster home) for one test."""
    home = tmp_path / "factflow-home"
    monkeypatch.setenv("FACTFLOW_HOME", str(home))
    for name in ("FACTFLOW_STORAGE_URI", "FACTFLOW_DATABASE_URL", "DAGSTER_HOME", "FACTFLOW_PIPELINES_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield home
    dispose_engines()


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


@pytest.fixture
def postgres_url(postgres_admin_url) -> str:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"factflow_test_{secrets.token_hex(6)}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
    """A pipelines directory; `write(timeout=..., max_tokens=...)` (re)writes site_md.yaml."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    monkeypatch.setenv("FACTFLOW_PIPELINES_DIR", str(folder))
    (folder / "remark.yaml").write_text(REMARK)

    def write(timeout: float = 60, max_tokens: int = 512) -> None:
        (folder / "site_md.yaml").write_text(PIPELINE.format(timeout=timeout, max_tokens=max_tokens))

    write()
    return write


@pytest.fixture
def env(factflow_home):
    settings = Settings.from_env()
    return FactflowDatabase(settings.database_url), ObjectStore(settings.storage_uri)
