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
from pathlib import Path

from dagster import DagsterInstance
from sqlalchemy import event, exc
from sqlalchemy.pool import Pool

from ..assets.dagster_private import LOCATION_MODULE, LOCATION_NAME
from ..settings import Settings, shipped

INSTANCE_TEMPLATE = shipped("dagster.yaml")
#: The workspace the UI, the daemon and `--detach` load: the code location by module, so it works
#: wherever factflow is installed (the repository's own workspace.yaml is for `dagster dev` in a
#: checkout).
WORKSPACE_YAML = f"""{{mark}}load_from:
  - python_module:
      module_name: {LOCATION_MODULE}
      location_name: {LOCATION_NAME}
"""
GENERATED_MARK = "# Written by factflow from its dagster.yaml; replace this line to keep your own edits.\n"
#: dagster-postgres' storages, as subclasses that wait out a dropped connection
#: (assets/dagster_storage.py).
POSTGRES_STORAGE = "\n# FACTFLOW_DATABASE_URL is PostgreSQL: Dagster's storage lives on the same server.\n" + "".join(
    f"""{section}:
  module: factflow_assets.assets.dagster_storage
  class: {cls}
  config:
    postgres_url:
      env: FACTFLOW_DATABASE_URL
"""
    for section, cls in (
        ("run_storage", "WaitingRunStorage"),
        ("event_log_storage", "WaitingEventLogStorage"),
        ("schedule_storage", "WaitingScheduleStorage"),
    )
)
#: Pooled connections for a process that runs stages in process (DAGSTER-NOTES: a PostgreSQL
#: connection per call costs ~1 s per run): statement timeout off (0), recycle after an hour.
POOL = {"statement_timeout": 0, "pool_recycle": 3600, "max_overflow": 10}


def instance_yaml(settings: Settings) -> str:
    return GENERATED_MARK + INSTANCE_TEMPLATE.read_text() + (POSTGRES_STORAGE if settings.uses_postgres else "")


def workspace_file(settings: Settings) -> Path:
    """`$DAGSTER_HOME/workspace.yaml`, written by `ensure_dagster_home`."""
    return settings.dagster_home / "workspace.yaml"


def ensure_dagster_home(settings: Settings) -> None:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    _write_generated(home / "dagster.yaml", instance_yaml(settings))
    _write_generated(workspace_file(settings), WORKSPACE_YAML.format(mark=GENERATED_MARK))
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["FACTFLOW_DATABASE_URL"] = settings.database_url


def _write_generated(path: Path, wanted: str) -> None:
    """Write `path` unless it holds someone's own edits (no factflow mark on its first line)."""
    current = path.read_text() if path.exists() else None
    if current != wanted and (current is None or current.startswith(GENERATED_MARK)):
        path.write_text(wanted)


def dagster_instance(settings: Settings) -> DagsterInstance:
    ensure_dagster_home(settings)
    instance = DagsterInstance.get()
    if settings.uses_postgres:
        ping_pooled_connections()
        instance.optimize_for_webserver(**POOL)
    return instance


def ping_pooled_connections() -> None:
    """Every pooled PostgreSQL connection is pinged as it is checked out, and replaced when the
    server dropped it (SQLAlchemy's pessimistic disconnect handling, on the Pool class: Dagster's
    pooled engines take no `pool_pre_ping`). A connection the server terminated (a restart, a
    failover, an operator's pg_terminate_backend) then costs a reconnect instead of failing the
    run's next read or event write."""
    if not event.contains(Pool, "checkout", _ping_on_checkout):
        event.listen(Pool, "checkout", _ping_on_checkout)


def _ping_on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
    if type(dbapi_connection).__module__.partition(".")[0] != "psycopg2":
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
    except Exception as error:  # any failure of a liveness probe means: use another connection
        raise exc.DisconnectionError(str(error)) from error
