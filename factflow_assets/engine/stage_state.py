"""What a stage loop shares with whoever drives it: its control, its identity, its summary, and the
services and fault budgets of the run it belongs to (architecture §2)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

import aiohttp

from resources.database import FactflowDatabase
from resources.errors import error_text
from resources.lineage_store import LineageWriter
from resources.storage import ObjectStore

from ..config import Stage
from ..fetching.network_policy import NetworkPolicy
from ..settings import DEFAULT_DATABASE_OUTAGE_SECONDS, DEFAULT_STORAGE_RETRY_SECONDS

log = logging.getLogger(__name__)


@dataclass
class StageControl:
    """What the stage loop shares with whoever watches it, across threads.

    The watcher sets `stop` (cancel; one event shared by every stage of a run) and `paused` (the
    stage's route paused); the loop writes `inputs` (messages known so far) and `taken` as it
    takes each one.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    inputs: int | None = None
    taken: int = 0


@dataclass(frozen=True)
class StageJob:
    """What identifies one run of one stage for one execution."""

    execution_id: str
    stage: Stage
    config_hash: str
    run_id: str | None
    batch_id: str


class StoppedMidway(Exception):
    """A stop came while an adapter was still making its outputs one by one: the row is
    `cancelled` (what was made is stored; a resume makes them all again, over the same keys)."""


@dataclass
class StageSummary:
    messages_in: int = 0
    messages_out: int = 0
    failed: int = 0
    skipped: int = 0
    reused: int = 0
    unchanged: int = 0  # carried over from the baseline of an incremental execution
    not_started: int = 0  # left untouched because a stop was requested
    stopped_midway: int = 0  # a stop came while their outputs were being made (`StoppedMidway`)
    stale_deleted: int = 0  # objects of earlier runs this run did not write again (a replay's leftovers)
    duration_s: float = 0.0
    failure_samples: list[str] = field(default_factory=list)
    #: Every input went through, and the input itself was whole (the stage before, if it ran
    #: alongside, saw all of its own): the stage's outputs are what it should be.
    complete: bool = False

    @property
    def all_failed(self) -> bool:
        """Input came and not one invocation succeeded (architecture §2.6)."""
        return self.failed > 0 and self.failed == self.messages_in


class FaultNotice:
    """One line when a fault starts and one when it ends, however many calls meet it meanwhile (a
    storage or a database away for a minute would otherwise fill the terminal)."""

    def __init__(self, what: str):
        self.what = what
        self.since: float | None = None
        self._lock = threading.Lock()

    def failed(self, error: BaseException, budget: float) -> None:
        with self._lock:
            if self.since is None:
                self.since = time.monotonic()
                log.warning("%s failing (%s); retrying for up to %g s, the stages waiting", self.what, error_text(error), budget)

    def worked(self) -> None:
        with self._lock:
            if self.since is not None:
                log.warning("%s working again after %.0f s", self.what, time.monotonic() - self.since)
                self.since = None


@dataclass(frozen=True)
class FaultBudgets:
    """How long a run rides out a fault before the work it holds fails (README, "Reliability")."""

    storage_seconds: float = DEFAULT_STORAGE_RETRY_SECONDS  # a write keeps being retried, the stage held meanwhile
    database_seconds: float = DEFAULT_DATABASE_OUTAGE_SECONDS  # lineage rows wait for the database, none dropped


@dataclass
class StageServices:
    """What a stage loop works with; a streaming run shares one of each between its stages."""

    store: ObjectStore
    db: FactflowDatabase
    http: aiohttp.ClientSession
    io: Executor  # blocking storage and database calls run here, off the event loop
    writer: LineageWriter
    budgets: FaultBudgets = field(default_factory=FaultBudgets)
    storage_notice: FaultNotice = field(default_factory=lambda: FaultNotice("object storage"))
    network: NetworkPolicy | None = None
    #: The execution an incremental execution compares with (`execution start --since`): what it
    #: stored for an input that has not changed is carried over instead of made again.
    baseline: str | None = None
