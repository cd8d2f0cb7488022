"""Dagster's PostgreSQL storage, waiting out a dropped connection instead of failing the run.

dagster-postgres retries opening a connection a few times, but a statement on a connection the
server terminated (a restart, a failover, an operator's `pg_terminate_backend`) fails at once: the
run's next event write or run-storage read raises, and the run dies mid-stage. factflow's
dagster.yaml names these subclasses instead (Dagster's documented way to configure a storage
class), and every public storage call is tried again: for a few seconds in a command, within
FACTFLOW_DATABASE_OUTAGE_SECONDS while a run runs in the process (resources/outage.py), the same
budget lineage writes wait out an outage with.

Dagster's storages run in AUTOCOMMIT: a statement that failed with the connection either ran
whole or not at all, so trying it again is at worst a duplicate event-log row (when the server
died after committing and before answering), never half a write. Generator methods and
connection context managers are left as they are: they cannot be started over from here.
"""

from __future__ import annotations

import functools
import inspect

from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from resources.outage import wait_out

#: Not storage calls: set-up, configuration, connections and the like.
_NOT_WRAPPED = frozenset(
    {"from_config_value", "config_type", "inst_data", "create_clean_storage", "connect", "optimize_for_webserver", "dispose",
     "register_instance", "alembic_version", "upgrade", "reindex_events", "reindex_assets", "migrate", "optimize"}
)


def _waiting(name: str, method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return wait_out(lambda: method(self, *args, **kwargs), what=f"Dagster's storage ({name})")

    return call


def _waiting_out_outages(cls):
    """Override every public method of the storage with one that waits out a dropped connection."""
    base = cls.__mro__[1]
    for name, member in inspect.getmembers(base, inspect.isfunction):
        if name.startswith("_") or name in _NOT_WRAPPED or inspect.isgeneratorfunction(member):
            continue
        if isinstance(inspect.getattr_static(base, name), (staticmethod, classmethod, property)):
            continue
        setattr(cls, name, _waiting(name, member))
    original = base.from_config_value.__func__

    @classmethod
    def from_config_value(klass, inst_data, config_value):
        storage = wait_out(lambda: original(base, inst_data, config_value), what=f"Dagster's storage ({base.__name__} set-up)")
        storage.__class__ = klass  # the parent builds its own class; the instance is the same, its methods ours
        return storage

    cls.from_config_value = from_config_value
    return cls


@_waiting_out_outages
class WaitingRunStorage(PostgresRunStorage):
    """PostgresRunStorage that waits out a dropped connection."""


@_waiting_out_outages
class WaitingEventLogStorage(PostgresEventLogStorage):
    """PostgresEventLogStorage that waits out a dropped connection."""


@_waiting_out_outages
class WaitingScheduleStorage(PostgresScheduleStorage):
    """PostgresScheduleStorage that waits out a dropped connection."""
