"""Lineage rows: the batched writer the stage loop feeds, and the queries over them.

The writer never makes the message flow wait on the database: rows go into memory and a
background thread writes them in batches (an INSERT for new rows, an UPDATE for rows already
written). A row that starts and finishes between two flushes is inserted once, finished.

A row is current until something replaces it: a replay of its stage, or a later attempt on the
same message (a retry after a failure, a resume after an interruption). Replaced rows stay as
history with `superseded` set, so counts and failure lists read current rows only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from .clock import utcnow
from .db_schema import lineage
from .errors import FactflowError
from .outage import is_outage
from .transactions import writing

log = logging.getLogger(__name__)


#: Longest wait between two tries at a database that is away.
MAX_RETRY_DELAY = 5.0

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
    """Buffers lineage rows and writes them in batches from a background thread.

    A database that goes away loses no row: the rows wait in memory, and in a journal file as soon
    as the outage begins (so a process that dies meanwhile loses none either: `replay_journal`
    writes them later); writes are tried again with backoff until the database answers, for up to
    `outage_budget` seconds. While rows pile up the writer says it is `congested`, and the stages
    take no new message (the flow slows instead of running ahead). Past the budget the writer has
    `gave_up`, and `close` raises, naming the journal that keeps the rows. The log gets one line
    when the outage starts and one when it ends.
    """

    #: Rows waiting (during an outage) beyond which the stages stop taking new messages.
    CONGESTION = 2000

    def __init__(
        self,
        engine: Engine,
        flush_interval: float = 0.25,
        max_batch: int = 500,
        outage_budget: float = 600.0,
        journal: Path | None = None,
    ):
        self.engine = engine
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.outage_budget = outage_budget
        self.journal = journal
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._new: dict[str, dict] = {}
        self._finished: dict[str, dict] = {}
        self._superseded: set[str] = set()
        self._journaled: set[tuple[str, str]] = set()  # (kind, row id) already in the journal
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._outage_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name="lineage-writer", daemon=True)
        self._thread.start()

    @property
    def congested(self) -> bool:
        """An outage is on and rows pile up: the stages should wait before taking more messages."""
        return self._outage_since is not None and len(self._new) + len(self._finished) > self.CONGESTION

    @property
    def gave_up(self) -> bool:
        """The database stayed away longer than the outage budget (or refused rows for good)."""
        return self._error is not None and (isinstance(self._error, IntegrityError) or self._outage_since is None or self._over_budget())

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
        """Write everything queued so far, now (one try)."""
        self._flush_once()
        if self._error:
            raise FactflowError(self._failure())

    def close(self) -> None:
        """Stop the background thread and write what is left (`drain`)."""
        self._closed = True
        self._wake.set()
        self._thread.join()
        self.drain()

    def commit_now(self) -> None:
        """Write what is queued now, in the caller's thread, once: for rows that must not wait for
        the next interval (a link-following stage's: a page whose row is written is not fetched
        again after a kill). During an outage the rows go to the journal, as the loop's would."""
        self._flush_once()

    def drain(self) -> None:
        """Write everything queued so far, riding out an outage within its budget; FactflowError
        (naming the journal that keeps the rows) when that cannot be done."""
        delay = self.flush_interval
        while True:
            self._flush_once()
            if not self._error:
                return
            if isinstance(self._error, IntegrityError) or self._over_budget():
                raise FactflowError(self._failure())
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def _failure(self) -> str:
        kept = f"; the rows are kept in {self.journal}, which a resume writes" if self.journal is not None and self.journal.exists() else ""
        return f"lineage could not be written: {self._error}{kept}"

    def _over_budget(self) -> bool:
        return self._outage_since is not None and time.monotonic() - self._outage_since > self.outage_budget

    def _loop(self) -> None:
        delay = self.flush_interval
        while not self._closed:
            self._wake.wait(delay)
            self._wake.clear()
            try:
                self._flush_once()
            except Exception:  # recorded in _error by _flush_once; keep the thread alive
                log.exception("lineage flush failed")
            # while the database is away, try less and less often (up to every few seconds)
            delay = min(delay * 2, MAX_RETRY_DELAY) if self._outage_since is not None else self.flush_interval

    def _flush_once(self) -> None:
        with self._flush_lock:
            with self._lock:
                new, finished, superseded = self._new, self._finished, self._superseded
                self._new, self._finished, self._superseded = {}, {}, set()
            if not new and not finished and not superseded:
                return
            try:
                self._write(list(new.values()), finished, superseded)
            except Exception as error:
                self._error = error
                with self._lock:  # keep the rows for the next flush rather than lose them, whatever failed
                    self._new = {**new, **self._new}
                    self._finished = {**finished, **self._finished}
                    self._superseded |= superseded
                if isinstance(error, IntegrityError):  # rows the database refuses: no retry makes them fit
                    log.error("lineage rows refused by the database: %s", error.orig)
                    return
                if not isinstance(error, DBAPIError) and not is_outage(error):
                    raise
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    log.warning(
                        "the factflow database is unreachable (%s); lineage rows wait for it (up to %g s), the stages slow down",
                        _first_line(error), self.outage_budget,
                    )
                self._keep_in_journal(new, finished, superseded)
                return
            self._error = None
            if self._outage_since is not None:
                log.warning("the factflow database answers again after %.0f s; every waiting lineage row is written", time.monotonic() - self._outage_since)
                self._outage_since = None
                with self._lock:
                    drained = not self._new and not self._finished
                if drained and self.journal is not None:
                    self.journal.unlink(missing_ok=True)
                    self._journaled.clear()

    def _keep_in_journal(self, new: dict[str, dict], finished: dict[str, dict], superseded: set[str]) -> None:
        """Append what is not in the journal yet: a process that dies during the outage loses nothing."""
        if self.journal is None:
            return
        entries: list[dict[str, Any]] = []
        for row_id, row in new.items():
            if ("start", row_id) not in self._journaled:
                entries.append({"start": row})
                self._journaled.add(("start", row_id))
                if row.get("finished_at"):
                    self._journaled.add(("finish", row_id))
            elif row.get("finished_at") and ("finish", row_id) not in self._journaled:
                entries.append({"finish": row_id, "values": {name: row.get(name) for name in FINISH_FIELDS}})
                self._journaled.add(("finish", row_id))
        for row_id, values in finished.items():
            if ("finish", row_id) not in self._journaled:
                entries.append({"finish": row_id, "values": values})
                self._journaled.add(("finish", row_id))
        entries += [{"supersede": row_id} for row_id in superseded if ("supersede", row_id) not in self._journaled]
        self._journaled |= {("supersede", row_id) for row_id in superseded}
        if entries:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            with open(self.journal, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(entry, default=_jsonable) + "\n" for entry in entries)
                out.flush()
                os.fsync(out.fileno())

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

    def replay_journals(self, folder: Path, execution_id: str) -> int:
        """Write every journal an earlier run of the execution left (`<execution>-*.jsonl`)."""
        return sum(replay_journal(self.engine, journal) for journal in sorted(folder.glob(f"{execution_id}-*.jsonl")))

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

    def replace_stage_rows(self, execution_id: str, route: str, stage: str, rows: list[dict]) -> None:
        """Make `rows` the current rows of one (route, stage) of an execution, in one transaction:
        the stage's earlier rows stay as history, superseded (a step that is not a stage loop,
        such as writing the dataset, records itself so)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(lineage)
                .where(lineage.c.execution_id == execution_id, lineage.c.route == route, lineage.c.stage == stage, lineage.c.superseded.is_(False))
                .values(superseded=True)
            )
            if rows:
                conn.execute(insert(lineage), rows)

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

    def close_stale_pending(self, execution_id: str, current_run_id: str, reason: str) -> int:
        """Rows that earlier runs of the execution left pending (a run that died, or lost its
        database at the wrong moment) become `cancelled`, saying why; return how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(lineage)
                .where(lineage.c.execution_id == execution_id, lineage.c.status == "pending", lineage.c.dagster_run_id != current_run_id)
                .values(status="cancelled", error_class="RunInterrupted", error_message=reason, finished_at=utcnow())
            ).rowcount

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


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


_DATETIME_FIELDS = ("started_at", "finished_at")


def replay_journal(engine: Engine, journal: Path) -> int:
    """Write what a journal kept (rows a run could not write while the database was away) and
    remove it; return how many entries. Idempotent: a row already there is only updated."""
    entries = [json.loads(text) for text in journal.read_text(encoding="utf-8").splitlines() if text.strip()]
    with engine.begin() as conn:
        for entry in entries:
            if "start" in entry:
                row = {**entry["start"], **{k: _datetime(entry["start"].get(k)) for k in _DATETIME_FIELDS}}
                if conn.execute(select(lineage.c.id).where(lineage.c.id == row["id"])).first() is None:
                    conn.execute(insert(lineage), [row])
                else:
                    conn.execute(update(lineage).where(lineage.c.id == row["id"]).values({k: row[k] for k in FINISH_FIELDS if k in row}))
            elif "finish" in entry:
                values = {**entry["values"], "finished_at": _datetime(entry["values"].get("finished_at"))}
                conn.execute(update(lineage).where(lineage.c.id == entry["finish"]).values(values))
            else:
                conn.execute(update(lineage).where(lineage.c.id == entry["supersede"]).values(superseded=True))
    journal.unlink()
    return len(entries)


def _datetime(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value
