"""Where factflow keeps things: the environment first, then a settings file, then defaults.

Every setting has a default that works on a laptop with nothing configured: the factflow home
(`FACTFLOW_HOME`, default `~/.factflow`) holds the SQLite database, the object storage folder and
the Dagster home. Production sets the URLs instead (README, "Configuration"), as environment
variables or in `$FACTFLOW_HOME/settings.toml` (another file with `FACTFLOW_SETTINGS`):

    database_url = "postgresql+psycopg2://factflow@db.internal:5432/factflow"
    storage_uri = "s3://knowledge/factflow"
    s3_endpoint_url = "http://minio.internal:9000"

A variable beats the file, so one command can point elsewhere without editing it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from resources.errors import FactflowError

PACKAGE_ROOT = Path(__file__).resolve().parent
#: The source tree (tests, benchmarks, the shipped files as the repository keeps them); an
#: installed wheel has no such folder, only the package.
PROJECT_ROOT = PACKAGE_ROOT.parent


def shipped(name: str) -> Path:
    """A file or folder factflow ships (`pipelines`, the `dagster.yaml` template): inside the package
    when installed from a wheel (`factflow_assets/shipped/`, pyproject's force-include), at the top
    of the source tree in a checkout."""
    packaged = PACKAGE_ROOT / "shipped" / name
    return packaged if packaged.exists() else PROJECT_ROOT / name


SHIPPED_PIPELINES_DIR = shipped("pipelines")

#: Settings-file key → environment variable that overrides it.
VARIABLES = {
    "database_url": "FACTFLOW_DATABASE_URL",
    "storage_uri": "FACTFLOW_STORAGE_URI",
    "s3_endpoint_url": "FACTFLOW_S3_ENDPOINT_URL",
    "pipelines_dir": "FACTFLOW_PIPELINES_DIR",
    "dagster_home": "DAGSTER_HOME",
    "storage_retry_seconds": "FACTFLOW_STORAGE_RETRY_SECONDS",
    "database_outage_seconds": "FACTFLOW_DATABASE_OUTAGE_SECONDS",
}
#: How long a run rides out a fault before it gives up (README, "Reliability").
DEFAULT_STORAGE_RETRY_SECONDS = 120.0
DEFAULT_DATABASE_OUTAGE_SECONDS = 600.0


@dataclass(frozen=True)
class Settings:
    home: Path
    storage_uri: str
    database_url: str
    pipelines_dir: Path
    dagster_home: Path
    s3_endpoint_url: str | None
    storage_retry_seconds: float = DEFAULT_STORAGE_RETRY_SECONDS  # a failing object write is retried this long
    database_outage_seconds: float = DEFAULT_DATABASE_OUTAGE_SECONDS  # lineage waits this long for the database

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("FACTFLOW_HOME") or Path.home() / ".factflow").expanduser().resolve()
        file = _settings_file(env, home)

        def setting(key: str) -> str | None:
            return env.get(VARIABLES[key]) or file.get(key)

        pipelines_dir = setting("pipelines_dir")
        return cls(
            home=home,
            storage_uri=setting("storage_uri") or (home / "storage").as_uri(),
            database_url=setting("database_url") or f"sqlite:///{home / 'factflow.db'}",
            pipelines_dir=Path(pipelines_dir).expanduser().resolve() if pipelines_dir else _default_pipelines_dir(),
            dagster_home=Path(setting("dagster_home") or home / "dagster").expanduser().resolve(),
            s3_endpoint_url=setting("s3_endpoint_url") or env.get("AWS_ENDPOINT_URL"),
            storage_retry_seconds=_seconds("storage_retry_seconds", setting("storage_retry_seconds"), DEFAULT_STORAGE_RETRY_SECONDS),
            database_outage_seconds=_seconds("database_outage_seconds", setting("database_outage_seconds"), DEFAULT_DATABASE_OUTAGE_SECONDS),
        )

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


def _seconds(key: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise FactflowError(f"{key} ({VARIABLES[key]}) must be a number of seconds, not {value!r}")
    return seconds


def _settings_file(env, home: Path) -> dict[str, str]:
    """The settings file's values; FactflowError naming the file and the key when it is wrong."""
    path = Path(env["FACTFLOW_SETTINGS"]).expanduser() if env.get("FACTFLOW_SETTINGS") else home / "settings.toml"
    if not path.is_file():
        if env.get("FACTFLOW_SETTINGS"):
            raise FactflowError(f"FACTFLOW_SETTINGS names {path}, which is not a file")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise FactflowError(f"cannot read the settings file {path}: {error}") from None
    unknown = sorted(set(values) - set(VARIABLES))
    if unknown:
        raise FactflowError(f"{path}: unknown setting {unknown[0]!r} (settings: {', '.join(VARIABLES)})")
    wrong = [key for key, value in values.items() if not isinstance(value, str)]
    if wrong:
        raise FactflowError(f"{path}: {wrong[0]} must be a string")
    return values


def _default_pipelines_dir() -> Path:
    """`./pipelines` when the working directory has one, else the pipelines shipped with factflow."""
    local = Path.cwd() / "pipelines"
    return local.resolve() if local.is_dir() else SHIPPED_PIPELINES_DIR
