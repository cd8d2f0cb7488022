"""The Dagster instance factflow uses, with a DAGSTER_HOME a new user never has to create.

`DAGSTER_HOME` defaults to `$FACTFLOW_HOME/dagster`. factflow writes its `dagster.yaml` from the
project's template, adding the PostgreSQL storage (dagster-postgres) when the factflow database is
PostgreSQL, so Dagster's runs, event log and schedules live on the same server and one setting
moves both (a dagster.yaml cannot choose its storage from a variable by itself). The URL stays
out of the file: it is read from `FACTFLOW_DATABASE_URL`, which is exported here, with
`DAGSTER_HOME`, for the code servers and daemons factflow starts. A dagster.yaml someone wrote by
hand (without factflow's first line) is left alone.
"""

from __future__ import annotations

import os

from dagster import DagsterInstance

from ..settings import PROJECT_ROOT, Settings

INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"
GENERATED_MARK = "# Written by factflow from its dagster.yaml; replace this line to keep your own edits.\n"
POSTGRES_STORAGE = """
# FACTFLOW_DATABASE_URL is PostgreSQL: Dagster's storage lives on the same server.
storage:
  postgres:
    postgres_url:
      env: FACTFLOW_DATABASE_URL
"""
#: Pooled connections for a process that runs stages in process (DAGSTER-NOTES: a PostgreSQL
#: connection per call costs ~1 s per run): statement timeout off (0), recycle after an hour.
POOL = {"statement_timeout": 0, "pool_recycle": 3600, "max_overflow": 10}


def instance_yaml(settings: Settings) -> str:
    return GENERATED_MARK + INSTANCE_TEMPLATE.read_text() + (POSTGRES_STORAGE if settings.uses_postgres else "")


def ensure_dagster_home(settings: Settings) -> None:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = instance_yaml(settings)
    current = config.read_text() if config.exists() else None
    if current != wanted and (current is None or current.startswith(GENERATED_MARK)):
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["FACTFLOW_DATABASE_URL"] = settings.database_url


def dagster_instance(settings: Settings) -> DagsterInstance:
    ensure_dagster_home(settings)
    instance = DagsterInstance.get()
    if settings.uses_postgres:
        instance.optimize_for_webserver(**POOL)
    return instance
