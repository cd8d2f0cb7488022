"""The stage loop: every input message through one adapter, with bounded concurrency.

For each input message the runner decides whether it is already done (an earlier completed
invocation with the same input hash and config hash whose outputs are all stored: architecture §2.5),
otherwise opens a pending lineage row, runs the adapter with the route's retries, stores every
emitted message with its sidecar, finishes the row as completed, skipped or failed, and hands each
stored message on to the stages it feeds that run alongside (`outputs`), messages found done
included, so the next stage starts on the first page rather than after the last. A failing message
never stops the loop. A stop request (a cancel) ends it gracefully: no new message is taken, the
ones in flight finish and are recorded. A pause does the same but waits, taking messages again on
resume. Nothing here knows about Dagster: whoever runs the loop drives its `StageControl` (the
run's heartbeat does, from the database).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, IntegrityError

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import NotFoundError, error_text
from resources.hashing import content_hash
from resources.lineage_store import LineageWriter, PriorInvocation
from resources.masking import mask_text, mask_uri
from resources.statuses import DONE_STATUSES, WITH_OUTPUTS
from resources.storage import (
    CORE_SIDECAR_FIELDS,
    ObjectStore,
    is_storage_fault,
    message_key,
    stage_prefix,
)

from ..adapters import (
    Adapter,
    AdapterContext,
    Emit,
    Message,
    PermanentError,
    SkipMessage,
    Unchanged,
)
from ..adapters.network_policy import NetworkPolicy
from ..config import Stage
from ..ids import derived_message_id, new_lineage_id, slug_of
from .inputs import HandedOnInput, InputHeader, InputItem, ListedInput, StageInput

log = logging.getLogger(__name__)

#: A failing object write is retried with this first delay, doubling up to the last.
STORAGE_RETRY_DELAYS = (0.2, 10.0)
IO_THREADS = 16
MAX_ERROR_MESSAGE = 2000
MAX_TRACEBACK = 8000
FAILURE_SAMPLES = 5
#: Sidecar extras that follow a message down its route (each adapter sets the rest itself).
INHERITED_FIELDS = ("url",)
#: Metadata fields that hold URLs (masked when they carry a password: `_shown`).
URL_FIELDS = frozenset({"url", "final_url", "canonical_url"})
#: Outputs made one by one are stored and handed on this many at a time.
EMIT_CHUNK = 256
#: The longest an adapter may take to open (its own limits, such as a browser's start, are shorter).
ADAPTER_OPEN_TIMEOUT = 120
#: How often a paused worker looks whether it may go on.
PAUSE_POLL = 0.2


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

    storage_seconds: float = 120.0  # a write keeps being retried, the stage held meanwhile
    database_seconds: float = 600.0  # lineage rows wait for the database, none dropped


@dataclass
class StageServices:
    """What a stage loop works with; a streaming run shares one of each between its stages."""

    store: ObjectStore
    db: FactflowDatabase
    http: httpx.AsyncClient
    io: Executor  # blocking storage and database calls run here, off the event loop
    writer: LineageWriter
    budgets: FaultBudgets = field(default_factory=FaultBudgets)
    storage_notice: FaultNotice = field(default_factory=lambda: FaultNotice("object storage"))
    network: NetworkPolicy | None = None
    #: The execution an incremental execution compares with (`execution start --since`): what it
    #: stored for an input that has not changed is carried over instead of made again.
    baseline: str | None = None


class StageRunner:
    def __init__(
        self,
        job: StageJob,
        inputs: StageInput,
        services: StageServices,
        control: StageControl | None = None,
        outputs: tuple[HandedOnInput, ...] = (),
    ):
        self.job = job
        self.control = control or StageControl()
        self.stage = job.stage
        self.inputs = inputs
        self.outputs = outputs
        self.services = services
        self.store = services.store
        self.writer = services.writer
        self.summary = StageSummary()

    async def _io(self, fn: Callable, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.services.io, fn, *args)

    async def _database(self, fn: Callable, *args) -> Any:
        """A read of the factflow database, waiting out an outage within the database budget."""
        budget, started, delay = self.services.budgets.database_seconds, time.monotonic(), 0.5
        while True:
            try:
                return await self._io(fn, *args)
            except DBAPIError as error:
                if isinstance(error, IntegrityError) or time.monotonic() - started + delay > budget:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _object_io(self, fn: Callable, *args) -> Any:
        """An object read or write: on a local disk it takes some tens of microseconds, less than
        handing it to a thread and back (measured: the hand-offs, not the writes, cost a 1,000-page
        run seconds of system time in lock contention), so it runs right here; on S3 a request
        takes milliseconds and goes to the I/O threads."""
        if self.store.is_local:
            return fn(*args)
        return await self._io(fn, *args)

    async def run(self) -> StageSummary:
        started = time.perf_counter()
        stage, job = self.stage, self.job
        try:
            self.inputs.bind(self._database)
            await self._io(self.inputs.prepare)
            self.control.inputs = self.inputs.known
            self.prior = await self._database(self.services.db.lineage.prior_invocations, job.execution_id, stage.route.name, stage.name)
            self.stored = set(await self._io(self.store.keys, stage_prefix(job.execution_id, stage.route.name, stage.name)))
            self.baseline_prior: dict[str, PriorInvocation] = {}
            self.baseline_stored: set[str] = set()
            if self.services.baseline:
                baseline = self.services.baseline
                self.baseline_prior = await self._database(self.services.db.lineage.prior_invocations, baseline, stage.route.name, stage.name)
                self.baseline_stored = set(await self._io(self.store.keys, stage_prefix(baseline, stage.route.name, stage.name)))
                gone = [p for p in self.baseline_prior.values() if p.status in WITH_OUTPUTS and not set(p.output_keys) <= self.baseline_stored]
                if gone:
                    log.warning("%s: %d message(s) of the baseline %s lost objects from storage; they are done in full", stage.ref, len(gone), baseline)
            self.kept: set[str] = set()  # keys this run wrote or found done
            self.adapter: Adapter = stage.adapter_class(
                stage.adapter_config, AdapterContext(self.services.http, job.execution_id, stage.route.name, stage.name, self.services.network)
            )
            await self._open_adapter()
            try:
                await asyncio.gather(*(self._worker() for _ in range(stage.route.concurrency)))
            finally:
                await self.adapter.close()
            summary = self.summary
            summary.not_started = self.inputs.known - summary.messages_in
            summary.complete = self.inputs.complete and not summary.not_started and not summary.stopped_midway
            if summary.complete:
                summary.stale_deleted = await self._io(self._remove_stale)
        finally:
            for output in self.outputs:  # never leave a stage after this one waiting for more
                output.upstream_complete = self.summary.complete
                output.handoff.close()
        self.summary.duration_s = round(time.perf_counter() - started, 3)
        return self.summary

    async def _open_adapter(self) -> None:
        """The adapter opened (a browser started, a pool of workers made) within ADAPTER_OPEN_TIMEOUT:
        a stage whose adapter cannot open fails at once, saying so, instead of sitting at 0 done."""
        try:
            await asyncio.wait_for(self.adapter.open(), ADAPTER_OPEN_TIMEOUT)
        except TimeoutError:
            raise PermanentError(f"{self.stage.adapter_type} did not open within {ADAPTER_OPEN_TIMEOUT} s") from None

    async def _worker(self) -> None:
        control = self.control
        while True:
            await self._wait_while_paused()
            await self._wait_while_lineage_waits()
            if control.stop.is_set() or self.writer.gave_up:
                return
            item = await self.inputs.next()  # one shared input: each message goes to exactly one worker
            if item is None:
                return
            # waiting for the stage before may have lasted: a pause or a stop may have come since
            await self._wait_while_paused()
            if control.stop.is_set():
                return  # not started: counted with the rest that was not
            control.taken += 1
            control.inputs = self.inputs.known
            try:
                await self._handle(item)
            finally:
                self.inputs.finished(item)

    async def _wait_while_lineage_waits(self) -> None:
        """While the database is away and rows pile up, take no new message: the flow slows down
        rather than run ahead of what lineage can record."""
        while self.writer.congested and not self.control.stop.is_set() and not self.writer.gave_up:
            await asyncio.sleep(PAUSE_POLL)

    async def _wait_while_paused(self) -> None:
        while self.control.paused.is_set() and not self.control.stop.is_set():
            await asyncio.sleep(PAUSE_POLL)

    async def _hand_on(self, items: list[InputItem]) -> None:
        """Give stored messages to the stages this one feeds in the same run (waiting while they
        are full: backpressure); after a stop they are only stored, for the resume to find."""
        for output in self.outputs:
            for item in items:
                if not await output.handoff.put(item):
                    break

    def _remove_stale(self) -> int:
        """Once every input went through: delete what earlier runs stored here and this run did
        not write again, so the stage's prefix holds exactly its current outputs (architecture §5).

        New objects were written over the old keys (message ids are deterministic), so a replay
        deletes only the leftovers, after the fact, instead of a whole prefix before it. An object
        a current (not superseded) row still names is never stale: a replay superseded the rows of
        what it redoes, so only a run whose input went missing could see one, and it must not
        turn a lost input into lost outputs.
        """
        named = {key for prior in self.prior.values() if prior.status in WITH_OUTPUTS for key in prior.output_keys}
        stale = sorted(self.stored - self.kept - named)
        return self.store.delete_keys(stale) if stale else 0

    def _already_done(self, header: InputHeader) -> PriorInvocation | None:
        prior = self.prior.get(header.message_id)
        if (
            prior is not None
            and prior.status in DONE_STATUSES
            and prior.input_hash == header.input_hash
            and prior.config_hash == self.job.config_hash
            and all(key in self.stored for key in prior.output_keys)
        ):
            return prior
        return None

    async def _handle(self, item: InputItem) -> None:
        self.summary.messages_in += 1
        ref = item.ref
        try:
            header = item.header or await self._storage(self.inputs.reader.describe, ref)
        except Exception as error:  # an unreadable input is a failed row too, not a crashed stage
            header = InputHeader(ref.rsplit("/", 1)[-1], None, "application/octet-stream", None)
            row_id = new_lineage_id()
            self.writer.start(self._pending_row(row_id, header, attempt=1, extras={}))
            self.writer.finish(row_id, finished_at=utcnow(), output_keys=[], metadata={}, **self._failure(header, error))
            return
        done = self._already_done(header)
        if done is not None:
            self.kept.update(done.output_keys)
            self.summary.reused += 1
            self.summary.messages_out += len(done.output_keys)
            await self._hand_on([InputItem(key) for key in done.output_keys])
            return

        prior = self.prior.get(header.message_id)
        extras = _shown({k: header.metadata[k] for k in INHERITED_FIELDS if k in header.metadata})
        before = self._baseline_of(header)
        row_id = new_lineage_id()
        self.writer.start(
            self._pending_row(row_id, header, attempt=(prior.attempt + 1) if prior else 1, extras=extras),
            supersedes=prior.lineage_id if prior else None,
        )
        clock = time.perf_counter()
        outcome: dict[str, Any] = {"output_keys": [], "output_count": 0, "output_bytes": 0, "metadata": _scalars(extras)}
        handed_on: list[InputItem] = []
        emits: list[Emit] | None = []  # None once outputs made one by one were handed on as made
        message = baseline_sidecar = None
        carried = False
        try:
            if before is not None and not self.stage.adapter_class.asks_source and before.input_hash == header.input_hash:
                carried = "its input is what the baseline had"  # nothing runs, not even its input is read
            else:
                body = item.body if item.body is not None else await self._storage(self.inputs.reader.body, ref)
                baseline_sidecar = await self._baseline_sidecar(before)
                message = Message(header.message_id, body, header.content_type, header.metadata, baseline=baseline_sidecar)
                try:
                    emits = await self._invoke(message)
                except Unchanged as said:
                    emits, carried = [], str(said) or "unchanged at the source"
                except SkipMessage:
                    await self.inputs.discovered(message, row_id)  # a noindex page's links are still followed
                    raise
                one = emits[0] if isinstance(emits, list) and len(emits) == 1 else None
                if not carried and baseline_sidecar is not None and one is not None and content_hash(one.encoded()[0]) == baseline_sidecar.get("sha256"):
                    carried = "the same bytes as the baseline's"
            if message is not None:  # links are queued before the row says done: a kill loses none
                await self.inputs.discovered(message, row_id)
            if carried:
                stored = await self._carried_outputs(before, row_id, baseline_sidecar)
                outcome["metadata"] = {**outcome["metadata"], "carried_from": before.lineage_id, "unchanged": carried}
            elif not isinstance(emits, list):  # made one by one (a sitemap's URLs): handed on as made
                stored, emits = await self._store_as_made(message, header, emits, row_id, extras), None
            else:
                stored = await self._store(message, header, emits, row_id, extras)
            written = [sidecar for sidecar, _body in stored]
            self.kept.update(sidecar["key"] for sidecar in written)
            if emits is not None:
                handed_on = [InputItem(sidecar["key"], InputHeader.of_sidecar(sidecar["key"], sidecar), data) for sidecar, data in stored]
            outcome.update(
                status="unchanged" if carried else "completed",
                output_keys=[sidecar["key"] for sidecar in written],
                output_hash=_combined_hash([sidecar["sha256"] for sidecar in written]),
                output_count=len(written),
                output_bytes=sum(sidecar["size"] for sidecar in written),
            )
            if carried:
                self.summary.unchanged += 1
            elif emits is not None and len(emits) == 1:
                outcome["metadata"] = _scalars(_shown({**extras, **emits[0].metadata}))
            else:
                outcome["metadata"]["outputs"] = len(written)
            self.summary.messages_out += len(written)
        except SkipMessage as reason:
            outcome.update(status="skipped", error_message=str(reason))
            self.summary.skipped += 1
        except StoppedMidway as stopped:
            outcome.update(status="cancelled", error_class="RunInterrupted", error_message=str(stopped))
            self.summary.stopped_midway += 1
        except Exception as error:  # a failed message is a failed row, never a failed loop
            outcome.update(self._failure(header, error))
        if message is not None and message.notes:
            outcome["metadata"] = {**outcome["metadata"], **_scalars(message.notes)}
        self.writer.finish(row_id, finished_at=utcnow(), duration_ms=round((time.perf_counter() - clock) * 1000, 2), **outcome)
        if handed_on:
            await self._hand_on(handed_on)

    def _baseline_of(self, header: InputHeader) -> PriorInvocation | None:
        """What the baseline execution did with this message here, when it can be carried over:
        done with outputs, under the same config, every output still stored."""
        before = self.baseline_prior.get(header.message_id)
        if (
            before is not None
            and before.status in WITH_OUTPUTS
            and before.config_hash == self.job.config_hash
            and before.output_keys
            and all(key in self.baseline_stored for key in before.output_keys)
        ):
            return before
        return None

    async def _baseline_sidecar(self, before: PriorInvocation | None) -> dict | None:
        """The sidecar of the baseline's output, for an adapter that asks its source (one output)."""
        if before is None or not self.stage.adapter_class.asks_source or len(before.output_keys) != 1:
            return None
        try:
            return await self._storage(self.store.metadata, before.output_keys[0])
        except NotFoundError:
            return None

    async def _carried_outputs(self, before: PriorInvocation, row_id: str, read_sidecar: dict | None) -> list[tuple[dict, bytes | None]]:
        """The baseline's outputs, copied to this execution's keys with sidecars that name it
        (`read_sidecar`: the one output's sidecar, when the adapter's run read it already)."""
        job = self.job
        own = {"execution_id": job.execution_id, "lineage_id": row_id, "dagster_run_id": job.run_id}

        def carry(source: str) -> dict:
            key = f"executions/{job.execution_id}/{source.removeprefix(f'executions/{self.services.baseline}/')}"
            return self.store.carry(source, key, own, read_sidecar if len(before.output_keys) == 1 else None)

        # in the I/O threads even on a local disk: a carry creates files (a link and a sidecar) and
        # does nothing else, so on the event loop it would hold up every fetch of the stage's run
        sidecars = await asyncio.gather(*(self._io(carry, source) for source in before.output_keys))
        return [(sidecar, None) for sidecar in sidecars]

    def _failure(self, header: InputHeader, error: Exception) -> dict[str, Any]:
        """Count a failed message and describe it for its lineage row."""
        self.summary.failed += 1
        if len(self.summary.failure_samples) < FAILURE_SAMPLES:
            self.summary.failure_samples.append(f"{header.message_id}: {type(error).__name__}: {error_text(error)}")
        log.debug("message %s failed at %s", header.message_id, self.stage.ref, exc_info=True)
        return {
            "status": "failed",
            "error_class": type(error).__name__,
            # a failed page's message and traceback are read by anyone with the database: no secrets
            "error_message": mask_text(error_text(error))[:MAX_ERROR_MESSAGE],
            "error_traceback": mask_text(traceback.format_exc())[-MAX_TRACEBACK:],
        }

    def _pending_row(self, row_id: str, header: InputHeader, attempt: int, extras: dict) -> dict:
        job, stage = self.job, self.stage
        return {
            "id": row_id,
            "execution_id": job.execution_id,
            "route": stage.route.name,
            "stage": stage.name,
            "adapter_type": stage.adapter_type,
            "message_id": header.message_id,
            "parent_lineage_id": header.parent_lineage_id,
            "batch_id": job.batch_id,
            "status": "pending",
            "input_hash": header.input_hash,
            "output_hash": None,
            "output_keys": [],
            "output_count": None,
            "output_bytes": None,
            "error_class": None,
            "error_message": None,
            "error_traceback": None,
            "started_at": utcnow(),
            "finished_at": None,
            "duration_ms": None,
            "dagster_run_id": job.run_id,
            "attempt": attempt,
            "config_hash": job.config_hash,
            "superseded": False,
            "metadata": _scalars(extras),
        }

    async def _invoke(self, message: Message) -> list[Emit] | Iterator[Emit]:
        """The adapter on one message, retried as the route's error_handling says."""
        policy = self.stage.route.error_handling
        retries_left = policy.retries
        while True:
            try:
                return await self.adapter.process(message)
            except (PermanentError, SkipMessage, Unchanged):  # answers, not failures: never retried
                raise
            except Exception:
                if not retries_left:
                    raise
                await asyncio.sleep(policy.retry_delay * 2 ** (policy.retries - retries_left))
                retries_left -= 1

    async def _store(
        self, message: Message, header: InputHeader, emits: list[Emit], row_id: str, extras: dict, seen: set[str] | None = None
    ) -> list[tuple[dict, bytes]]:
        """Write every emitted message and its sidecar (but those whose key is in `seen`, which
        gets the new ones); return each sidecar with the bytes written."""
        seen = set() if seen is None else seen
        job, stage = self.job, self.stage
        stage_path = f"{stage.route.name}/{stage.name}"
        parent_slug = slug_of(message.id)
        writes: dict[str, tuple[bytes, str, dict]] = {}
        for emit in emits:
            body, content_type = emit.encoded()
            identity = emit.identity if emit.identity is not None else message.id
            message_id = derived_message_id(stage_path, identity, emit.slug if emit.slug is not None else parent_slug)
            key = message_key(job.execution_id, stage.route.name, stage.name, message_id)
            if key in writes or key in seen:
                continue
            seen.add(key)
            own = _shown({k: v for k, v in emit.metadata.items() if v is not None and k not in CORE_SIDECAR_FIELDS})
            writes[key] = (
                body,
                content_type,
                {
                    **extras,
                    **own,
                    "execution_id": job.execution_id,
                    "route": stage.route.name,
                    "stage": stage.name,
                    "adapter_type": stage.adapter_type,
                    "message_id": message_id,
                    "parent_message_id": header.message_id,
                    "lineage_id": row_id,
                    "config_hash": job.config_hash,
                    "dagster_run_id": job.run_id,
                },
            )
        return list(await asyncio.gather(*(self._put(key, *value) for key, value in writes.items())))

    async def _store_as_made(self, message: Message, header: InputHeader, emits: Iterable[Emit], row_id: str, extras: dict) -> list[tuple[dict, None]]:
        """Outputs an adapter makes one by one (url_expander's, one per URL of a sitemap): stored and
        handed on a chunk at a time, so the next stage starts on the first while the rest are
        written, and memory holds a chunk, not a sitemap's worth. Returns each one's sidecar (its
        key, hash and size: what the lineage row needs) without its body."""
        made: list[tuple[dict, None]] = []
        seen: set[str] = set()  # an output made twice is stored and handed on once
        iterator = iter(emits)
        while chunk := list(itertools.islice(iterator, EMIT_CHUNK)):
            if self.control.stop.is_set():  # a sitemap's worth is not written out after a stop
                raise StoppedMidway(f"the run was stopped after {len(made)} of its outputs were made; a resume makes them again")
            stored = await self._store(message, header, chunk, row_id, extras, seen)
            self.kept.update(sidecar["key"] for sidecar, _body in stored)
            await self._hand_on([InputItem(sidecar["key"], InputHeader.of_sidecar(sidecar["key"], sidecar), body) for sidecar, body in stored])
            made += [({"key": sidecar["key"], "sha256": sidecar["sha256"], "size": sidecar["size"]}, None) for sidecar, _body in stored]
        return made

    async def _put(self, key: str, body: bytes, content_type: str, metadata: dict) -> tuple[dict, bytes]:
        return await self._storage(self.store.put, key, body, content_type, metadata), body

    async def _storage(self, fn: Callable, *args) -> Any:
        """An object read or write, waiting out a failing storage (a full disk, an unreachable
        bucket, a dropped connection: `is_storage_fault`) with backoff for the storage budget: the
        stage waits meanwhile instead of failing its messages. Past the budget, or on an answer
        such as a missing object, the message fails with the storage's error."""
        budget = self.services.budgets.storage_seconds
        started, delay = time.monotonic(), STORAGE_RETRY_DELAYS[0]
        while True:
            try:
                result = await self._object_io(fn, *args)
                self.services.storage_notice.worked()
                return result
            except Exception as error:
                if not is_storage_fault(error) or time.monotonic() - started + delay > budget:
                    raise
                self.services.storage_notice.failed(error, budget)
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORAGE_RETRY_DELAYS[1])


def _combined_hash(hashes: list[str]) -> str | None:
    if not hashes:
        return None
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def _shown(metadata: dict) -> dict:
    """Sidecar and lineage metadata as anyone reading storage or the database may see it: a
    password in a URL (`https://user:pw@host/`) masked. The message bodies keep the URL whole,
    for the fetch."""
    return {k: mask_uri(v) if k in URL_FIELDS and isinstance(v, str) and "@" in v else v for k, v in metadata.items()}


def _scalars(values: dict) -> dict:
    """The small, flat part of some metadata: what a lineage row keeps."""
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool)) and not (isinstance(v, str) and len(v) > 500)}


def run_stage(
    job: StageJob,
    inputs,
    store: ObjectStore,
    db: FactflowDatabase,
    http_factory: Callable[[], httpx.AsyncClient],
    control: StageControl | None = None,
    budgets: FaultBudgets | None = None,
) -> StageSummary:
    """Run one stage alone to the end (or until `control.stop` is set) on a fresh event loop, its
    input listed up front (an `InputSource`): the stage by itself, as tests and tools drive it."""

    async def main() -> StageSummary:
        writer = db.lineage.writer()
        io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="factflow-io")
        try:
            async with http_factory() as http:
                services = StageServices(store, db, http, io, writer, budgets or FaultBudgets())
                return await StageRunner(job, ListedInput(inputs), services, control).run()
        finally:
            await asyncio.get_running_loop().run_in_executor(io, writer.close)
            io.shutdown(wait=True)

    return asyncio.run(main())
