"""Lineage rows: the batched writer the stage loop feeds, and the queries over them.

The writer never makes the message flow wait on the database: rows go into memory and a
background thread writes them in batches (an INSERT for new rows, an UPDATE for rows already
written). A row that starts and finishes between two flushes is inserted once, finished.

A row is current until something replaces it: a replay of its stage, or a later attempt on the
same message (a retry after a failure, a resume after an interruption). Replaced rows stay as
history with `superseded` set, so counts and failure lists read current rows only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from .clock import utcnow
from .db_schema import lineage
from .errors import FactflowError
from .transactions import writing

log = logging.getLogger(__name__)


FINISH_FIELDS = (
    "status", "output_hash", "output_keys", "output_count", "output_bytes", "error_class", "error_message",
    "error_traceback", "finished_at", "duration_ms", "metadata",
)


@dataclass(frozen=True)
class PriorInvocation:
    """The latest earlier invocation of a stage on one message."""

    lineage_id: str
    status: str
    input_hash: str | None
    config_hash: str
    output_keys: list[str]
    attempt: int


class LineageWriter:
    """Buffers lineage rows and writes them in batches from a background thread."""

    def __init__(self, engine: Engine, flush_interval: float = 0.25, max_batch: int = 500, retries: int = 5):
        self.engine = engine
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.retries = retries
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._new: dict[str, dict] = {}
        self._finished: dict[str, dict] = {}
        self._superseded: set[str] = set()
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="lineage-writer", daemon=True)
        self._thread.start()

    def start(self, row: dict, supersedes: str | None = None) -> None:
        """Queue a new row (every column present, so batches insert together); `supersedes` is
        the earlier attempt it replaces, marked superseded in the same transaction."""
        with self._lock:
            self._new[row["id"]] = row
            if supersedes:
                self._superseded.add(supersedes)
            full = len(self._new) >= self.max_batch
        if full:
            self._wake.set()

    def finish(self, row_id: str, **fields: Any) -> None:
        """Queue a row's outcome: every FINISH_FIELDS column, so updates batch together."""
        values = {name: fields.get(name) for name in FINISH_FIELDS}
        with self._lock:
            if row_id in self._new:
                self._new[row_id].update(values)
            else:
                self._finished[row_id] = values
            full = len(self._finished) >= self.max_batch
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued so far, now."""
        self._flush_once()
        if self._error:
            raise FactflowError(f"lineage could not be written: {self._error}")

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self._flush_once()
            except Exception:  # recorded in _error by _flush_once; keep the thread alive
                log.exception("lineage flush failed")

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._lock:
                new, finished, superseded = self._new, self._finished, self._superseded
                self._new, self._finished, self._superseded = {}, {}, set()
            if not new and not finished and not superseded:
                return
            for attempt in range(1, self.retries + 1):
                try:
                    self._write(list(new.values()), finished, superseded)
                    self._error = None
                    return
                except IntegrityError as error:  # rows the database refuses: no retry makes them fit
                    self._error = error
                    log.error("lineage rows refused by the database: %s", error.orig)
                    break
                except DBAPIError as error:
                    self._error = error
                    log.warning("lineage write failed (attempt %s/%s): %s", attempt, self.retries, error)
                    time.sleep(min(0.2 * 2**attempt, 5))
            with self._lock:  # keep the rows for the next flush rather than lose them
                self._new = {**new, **self._new}
                self._finished = {**finished, **self._finished}
                self._superseded |= superseded

    def _write(self, new_rows: list[dict], finished: dict[str, dict], superseded: set[str]) -> None:
        with self.engine.begin() as conn:
            if new_rows:
                conn.execute(insert(lineage), new_rows)
            if superseded:
                conn.execute(update(lineage).where(lineage.c.id.in_(sorted(superseded))).values(superseded=True))
            if finished:
                statement = (
                    update(lineage)
                    .where(lineage.c.id == bindparam("row_id"))
                    .values({name: bindparam(name) for name in FINISH_FIELDS})
                )
                conn.execute(statement, [{"row_id": row_id, **values} for row_id, values in finished.items()])


class LineageStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def writer(self, **options) -> LineageWriter:
        return LineageWriter(self.engine, **options)

    def prior_invocations(self, execution_id: str, route: str, stage: str) -> dict[str, PriorInvocation]:
        """The latest non-superseded invocation per message of one stage of one execution."""
        query = select(
            lineage.c.id, lineage.c.message_id, lineage.c.status, lineage.c.input_hash,
            lineage.c.config_hash, lineage.c.output_keys, lineage.c.attempt,
        ).where(
            lineage.c.execution_id == execution_id,
            lineage.c.route == route,
            lineage.c.stage == stage,
            lineage.c.superseded.is_(False),
        )
        latest: dict[str, PriorInvocation] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                known = latest.get(row.message_id)
                if known is None or row.attempt > known.attempt:
                    latest[row.message_id] = PriorInvocation(
                        row.id, row.status, row.input_hash, row.config_hash, list(row.output_keys or []), row.attempt
                    )
        return latest

    def supersede(self, execution_id: str, stages: list[tuple[str, str]], conn: Connection | None = None) -> int:
        """Mark every current row of these (route, stage)s of one execution as history; return how
        many. A re-run of those stages then treats every message as new (nothing is skipped)."""
        if not stages:
            return 0
        total = 0
        with writing(self.engine, conn) as conn:
            for route, stage in stages:
                total += conn.execute(
                    update(lineage)
                    .where(
                        lineage.c.execution_id == execution_id,
                        lineage.c.route == route,
                        lineage.c.stage == stage,
                        lineage.c.superseded.is_(False),
                    )
                    .values(superseded=True)
                ).rowcount
        return total

    def close_interrupted(self, execution_id: str, run_id: str, reason: str) -> int:
        """Rows a dead run left pending become `cancelled`, saying why; return how many.

        They stay as the interrupted attempt: a resume counts its own attempt after them.
        """
        with self.engine.begin() as conn:
            return conn.execute(
                update(lineage)
                .where(
                    lineage.c.execution_id == execution_id,
                    lineage.c.dagster_run_id == run_id,
                    lineage.c.status == "pending",
                )
                .values(status="cancelled", error_class="RunInterrupted", error_message=reason, finished_at=utcnow())
            ).rowcount

    def stage_counts(self, execution_id: str) -> list[dict[str, Any]]:
        """Rows per route, stage and status for one execution (superseded rows left out)."""
        query = (
            select(lineage.c.route, lineage.c.stage, lineage.c.status, func.count().label("count"))
            .where(lineage.c.execution_id == execution_id, lineage.c.superseded.is_(False))
            .group_by(lineage.c.route, lineage.c.stage, lineage.c.status)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
