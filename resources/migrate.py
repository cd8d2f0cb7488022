"""The factflow database's schema, versioned: Alembic migrations under `resources/migrations`.

Every process brings the database to the newest revision on first use (one read of the version
table when it is there already; Alembic is only imported when something has to change), and
`factflow system migrate` does it on demand. Two processes upgrading at once take turns: a
PostgreSQL advisory lock (in the migration's transaction), or a file lock beside a SQLite file.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, inspect, text

#: The newest revision in resources/migrations/versions (a test holds the two together).
HEAD = "0005"
#: Dagster keeps its own `alembic_version` in a PostgreSQL database factflow may share.
VERSION_TABLE = "factflow_alembic_version"


def revision_of(engine: Engine) -> str | None:
    """The database's revision; None for an empty database or one made before migrations."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the database to HEAD; return its revision before and after."""
    before = revision_of(engine)
    if before == HEAD:
        return before, before
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "resources:migrations")
    with _sqlite_file_lock(engine), engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # rebuilding a table must not trip the keys of the tables around it
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
    return before, revision_of(engine)


@contextmanager
def _sqlite_file_lock(engine: Engine):
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
