"""Where factflow keeps things, read from the environment.

Every setting has a default that works on a laptop with nothing configured: the factflow home
(`FACTFLOW_HOME`, default `~/.factflow`) holds the SQLite database, the object storage folder and
the Dagster home. Production sets the URLs instead (README, "Configuration").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PIPELINES_DIR = PROJECT_ROOT / "pipelines"


@dataclass(frozen=True)
class Settings:
    home: Path
    storage_uri: str
    database_url: str
    pipelines_dir: Path
    dagster_home: Path
    s3_endpoint_url: str | None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home = Path(env.get("FACTFLOW_HOME") or Path.home() / ".factflow").expanduser().resolve()
        storage_uri = env.get("FACTFLOW_STORAGE_URI") or (home / "storage").as_uri()
        database_url = env.get("FACTFLOW_DATABASE_URL") or f"sqlite:///{home / 'factflow.db'}"
        return cls(
            home=home,
            storage_uri=storage_uri,
            database_url=database_url,
            pipelines_dir=_pipelines_dir(env),
            dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve(),
            s3_endpoint_url=env.get("FACTFLOW_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL"),
        )


def _pipelines_dir(env) -> Path:
    """`FACTFLOW_PIPELINES_DIR`, else `./pipelines` when the working directory has one, else the
    pipelines shipped with factflow."""
    if env.get("FACTFLOW_PIPELINES_DIR"):
        return Path(env["FACTFLOW_PIPELINES_DIR"]).expanduser().resolve()
    local = Path.cwd() / "pipelines"
    return local.resolve() if local.is_dir() else SHIPPED_PIPELINES_DIR
