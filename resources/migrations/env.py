"""Alembic's entry for factflow's schema: migrations run on a connection `resources/migrate.py` hands
over, in one transaction, with factflow's own version table (Dagster keeps `alembic_version` in
the same PostgreSQL database)."""

from alembic import context
from sqlalchemy import text

from resources.db_schema import metadata

#: Any fixed number: every process upgrading one PostgreSQL database takes this lock first.
ADVISORY_LOCK = 0x666163746C6F77  # "factflow"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="factflow_alembic_version",
    render_as_batch=True,  # SQLite alters tables by rebuilding them
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    context.run_migrations()
