"""The factflow database: connection, its schema's migrations on first use, and the stores over it.

SQLite under `$FACTFLOW_HOME` by default, any SQLAlchemy URL otherwise (PostgreSQL as
`postgresql+psycopg2://…`). One engine per URL per process, so the CLI and the assets it runs in
the same process share a pool. SQLite runs in WAL mode so a progress display can read while a
stage writes. A SQLite file this process may not write (a copy handed to an auditor, a mount
read-only) is opened read-only: every reading command works on it, a writing one says so.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool, SingletonThreadPool, StaticPool

from .deliveries_store import DeliveryStore
from .errors import FactflowError
from .executions_store import ExecutionStore
from .frontier_store import FrontierStore
from .lineage_queries import LineageQueries
from .lineage_store import LineageStore
from .migrate import upgrade
from .outage import wait_out
from .replays_store import ReplayStore
from .retention_store import RetentionStore
from .route_state_store import RouteStateStore
from .runners_store import RunnerStore
from .stage_progress_store import StageProgressStore

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _sqlite_pragmas(read_only: bool):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only:  # choosing the journal mode writes the file's header
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def engine_for(url: str) -> Engine:
    """The process-wide engine for `url`, created on first use, its schema brought to the newest
    revision (`migrate.py`)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            # a migration runs in one transaction: started over whole when the server drops it
            wait_out(lambda: upgrade(engine), what="migrating the factflow database")
            _engines[url] = engine
        return engine


#: Store methods that hand out something long-lived instead of doing one call.
_NOT_WAITED = frozenset({"writer"})


def _wait_out_outages(store: object) -> None:
    """Every public method of `store`, on this instance, waiting out a database outage (as long
    as `outage.budget()` says: a command's few seconds, or a run's budget)."""
    for name in dir(type(store)):
        method = getattr(store, name)
        if name.startswith("_") or name in _NOT_WAITED or not callable(method) or inspect.isgeneratorfunction(method):
            continue
        setattr(store, name, _waiting(method, f"the factflow database ({type(store).__name__}.{name})"))


def _waiting(method, what: str):
    @functools.wraps(method)
    def call(*args, **kwargs):
        if kwargs.get("conn") is not None:
            return method(*args, **kwargs)
        return wait_out(lambda: method(*args, **kwargs), what=what)

    return call


class _InterruptNoise(logging.Filter):
    """Drops the pool's "Exception closing connection" record when what interrupted the close is
    Ctrl+C or a run's interruption (a BaseException, not an Exception): SQLAlchemy logs it with
    its traceback and raises it again, and whoever was interrupted says what happened in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or isinstance(error, Exception)


for _pool in (QueuePool, NullPool, SingletonThreadPool, StaticPool):
    logging.getLogger(f"{_pool.__module__}.{_pool.__name__}").addFilter(_InterruptNoise())


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        connect_args = {"check_same_thread": False, "timeout": 30}
        read_only = parsed.query.get("mode") == "ro" or parsed.query.get("immutable") == "1"
        if database and database != ":memory:" and not database.startswith("file:"):  # a file:…?mode= URI is taken as written
            path = Path(database)
            read_only = _read_only(path)
            if read_only:  # SQLite opens it read-only
                url = f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
            else:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise FactflowError(f"cannot create the folder of the SQLite database {path.parent}: {error.strerror}") from None
        engine = create_engine(url, connect_args=connect_args)
        event.listen(engine, "connect", _sqlite_pragmas(read_only))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _read_only(path: Path) -> bool:
    """An existing database file this process may not write, or whose folder it may not write
    (SQLite writes its journal beside the file)."""
    return path.exists() and not (_writable(path) and _writable(path.parent))


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def migrate_database(url: str) -> tuple[str | None, str | None]:
    """Bring the database at `url` to the newest revision now; its revision before and after."""
    engine = _create_engine(url)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


class FactflowDatabase:
    """The stores over one database.

    On a server (PostgreSQL), every store call waits out a dropped or refused connection
    (resources/outage.py: a few seconds for a command, FACTFLOW_DATABASE_OUTAGE_SECONDS while a
    run runs): each is one statement or one transaction, so it is started over whole. A call given an outer transaction's `conn` is not:
    the outer transaction is what fails, and what its caller decides about. SQLite's errors are
    not outages (a locked file has its own busy timeout; a read-only one never heals).
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = engine_for(url)
        self.executions = ExecutionStore(self.engine)
        self.lineage = LineageStore(self.engine)
        self.lineage_queries = LineageQueries(self.engine)
        self.replays = ReplayStore(self.engine)
        self.runners = RunnerStore(self.engine)
        self.route_states = RouteStateStore(self.engine)
        self.progress = StageProgressStore(self.engine)
        self.retention = RetentionStore(self.engine)
        self.deliveries = DeliveryStore(self.engine)
        self.frontier = FrontierStore(self.engine)
        if self.engine.dialect.name != "sqlite":
            for store in (self.executions, self.lineage, self.lineage_queries, self.replays, self.runners,
                          self.route_states, self.progress, self.retention, self.deliveries, self.frontier):
                _wait_out_outages(store)

    def transaction(self):
        """One transaction for several stores' writes (pass the connection as their `conn`)."""
        return self.engine.begin()

