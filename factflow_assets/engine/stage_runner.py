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

Each message is reused (found done), carried over (an incremental execution's unchanged input:
`incremental.CarryOver`) or run; the rows' shapes are in `lineage_rows`, the writes of outputs in
`output_writes`, what the loop shares with its driver in `stage_state`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import error_text
from resources.hashing import content_hash
from resources.lineage_store import PriorInvocation
from resources.outage import is_outage, retry_async
from resources.statuses import DONE_STATUSES, WITH_OUTPUTS
from resources.storage import (
    ObjectStore,
    is_storage_fault,
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
from ..ids import new_lineage_id
from .incremental import CarryOver
from .inputs import HandedOnInput, InputHeader, InputItem, ListedInput, StageInput
from .lineage_rows import failed_fields, inherited, outputs_fields, pending_row, scalars, shown
from .output_writes import OutputWrites
from .stage_state import FaultBudgets, StageControl, StageJob, StageServices, StageSummary, StoppedMidway

log = logging.getLogger(__name__)

#: A failing object write is retried with this first delay, doubling up to the last.
STORAGE_RETRY_DELAYS = (0.2, 10.0)
IO_THREADS = 16
FAILURE_SAMPLES = 5
#: The longest an adapter may take to open (its own limits, such as a browser's start, are shorter).
ADAPTER_OPEN_TIMEOUT = 120
#: How often a paused worker looks whether it may go on.
PAUSE_POLL = 0.2


@dataclass
class Made:
    """What came of running (or not running) the adapter on one message, on its way to the row."""

    message: Message | None = None  # None: nothing was read (carried over on its input alone)
    emits: list[Emit] | Iterator[Emit] = field(default_factory=list)  # an iterator: made one by one
    before: PriorInvocation | None = None  # what the baseline did with the message here
    baseline_sidecar: dict | None = None
    carried: str | None = None  # why the baseline's outputs are carried over instead


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
        return await retry_async(lambda: self._io(fn, *args), is_fault=is_outage, seconds=self.services.budgets.database_seconds, first=0.5)

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
            self.kept: set[str] = set()  # keys this run wrote or found done
            self.writes = OutputWrites(job, self.store, self._storage, self.control, self.kept, self._hand_on)
            self.carry = CarryOver(self.services.baseline, job, self.store, self._database, self._io, self._storage)
            await self.carry.load(self.services.db)
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
        """One input message: found done (reused), else carried over from the baseline or run."""
        self.summary.messages_in += 1
        header = await self._header(item)
        if header is None:
            return
        done = self._already_done(header)
        if done is not None:
            self.kept.update(done.output_keys)
            self.summary.reused += 1
            self.summary.messages_out += len(done.output_keys)
            await self._hand_on([InputItem(key) for key in done.output_keys])
            return
        await self._invocation(item, header)

    async def _header(self, item: InputItem) -> InputHeader | None:
        """The item's header, read from its sidecar when it did not come with one; an unreadable
        input is a failed row (None), not a crashed stage."""
        try:
            return item.header or await self._storage(self.inputs.reader.describe, item.ref)
        except Exception as error:
            header = InputHeader(item.ref.rsplit("/", 1)[-1], None, "application/octet-stream", None)
            row_id = new_lineage_id()
            self.writer.start(pending_row(self.job, row_id, header, attempt=1, extras={}))
            self.writer.finish(row_id, finished_at=utcnow(), output_keys=[], metadata={}, **self._failure(header, error))
            return None

    async def _invocation(self, item: InputItem, header: InputHeader) -> None:
        """One invocation and its lineage row: opened pending, finished with what came of it."""
        prior = self.prior.get(header.message_id)
        extras = inherited(header)
        row_id = new_lineage_id()
        attempt = prior.attempt + 1 if prior else 1
        self.writer.start(pending_row(self.job, row_id, header, attempt, extras), supersedes=prior.lineage_id if prior else None)
        clock = time.perf_counter()
        outcome: dict[str, Any] = {"output_keys": [], "output_count": 0, "output_bytes": 0, "metadata": scalars(extras)}
        made = Made()  # filled in as it goes: a failure keeps what was known (the message's notes)
        handed_on: list[InputItem] = []
        try:
            await self._produce(item, header, row_id, made)
            if made.message is not None:  # links are queued before the row says done: a kill loses none
                await self.inputs.discovered(made.message, row_id)
            handed_on = await self._keep(made, header, row_id, extras, outcome)
        except SkipMessage as reason:
            outcome.update(status="skipped", error_message=str(reason))
            self.summary.skipped += 1
        except StoppedMidway as stopped:
            outcome.update(status="cancelled", error_class="RunInterrupted", error_message=str(stopped))
            self.summary.stopped_midway += 1
        except Exception as error:  # a failed message is a failed row, never a failed loop
            outcome.update(self._failure(header, error))
        if made.message is not None and made.message.notes:
            outcome["metadata"] = {**outcome["metadata"], **scalars(made.message.notes)}
        self.writer.finish(row_id, finished_at=utcnow(), duration_ms=round((time.perf_counter() - clock) * 1000, 2), **outcome)
        if self.stage.adapter_class.follows_links:  # written before the next page: a kill then refetches only pages in flight
            await self._io(self.writer.commit_now)
        if handed_on:
            await self._hand_on(handed_on)

    async def _produce(self, item: InputItem, header: InputHeader, row_id: str, made: Made) -> None:
        """Into `made`: carried over (the input is what the baseline had: nothing runs, not even a
        read), or the adapter's outputs; a single output equal to the baseline's is carried too."""
        made.before = before = self.carry.of(header)
        if before is not None and not self.stage.adapter_class.asks_source and before.input_hash == header.input_hash:
            made.carried = "its input is what the baseline had"
            return
        body = item.body if item.body is not None else await self._storage(self.inputs.reader.body, item.ref)
        made.baseline_sidecar = baseline = await self.carry.sidecar(before)
        made.message = message = Message(header.message_id, body, header.content_type, header.metadata, baseline=baseline)
        try:
            made.emits = await self._invoke(message)
        except Unchanged as said:
            made.emits, made.carried = [], str(said) or "unchanged at the source"
        except SkipMessage:
            await self.inputs.discovered(message, row_id)  # a noindex page's links are still followed
            raise
        one = made.emits[0] if isinstance(made.emits, list) and len(made.emits) == 1 else None
        if not made.carried and baseline is not None and one is not None and content_hash(one.encoded()[0]) == baseline.get("sha256"):
            made.carried = "the same bytes as the baseline's"

    async def _keep(self, made: Made, header: InputHeader, row_id: str, extras: dict, outcome: dict) -> list[InputItem]:
        """Store what was made (or carry the baseline's outputs), say so in `outcome`, and return
        what is to be handed on once the row is finished (outputs made one by one were already)."""
        handed_on = True
        stored: Sequence[tuple[dict, bytes | None]]
        if made.carried:
            assert made.before is not None  # carried over: from the baseline's invocation
            stored = await self.carry.outputs(made.before, row_id, made.baseline_sidecar)
            outcome["metadata"] = {**outcome["metadata"], "carried_from": made.before.lineage_id, "unchanged": made.carried}
            self.summary.unchanged += 1
        elif made.message is None:
            raise AssertionError("outputs made without a message read")
        elif not isinstance(made.emits, list):  # made one by one (a sitemap's URLs): handed on as made
            stored, handed_on = await self.writes.as_made(made.message, header, made.emits, row_id, extras), False
        else:
            stored = await self.writes.all(made.message, header, made.emits, row_id, extras)
        written = [sidecar for sidecar, _body in stored]
        self.kept.update(sidecar["key"] for sidecar in written)
        outcome.update(status="unchanged" if made.carried else "completed", **outputs_fields(written))
        if not made.carried and isinstance(made.emits, list) and len(made.emits) == 1:
            outcome["metadata"] = scalars(shown({**extras, **made.emits[0].metadata}))
        elif not made.carried:
            outcome["metadata"]["outputs"] = len(written)
        self.summary.messages_out += len(written)
        if not handed_on:
            return []
        return [InputItem(sidecar["key"], InputHeader.of_sidecar(sidecar["key"], sidecar), data) for sidecar, data in stored]

    def _failure(self, header: InputHeader, error: Exception) -> dict[str, Any]:
        """Count a failed message and describe it for its lineage row."""
        self.summary.failed += 1
        if len(self.summary.failure_samples) < FAILURE_SAMPLES:
            self.summary.failure_samples.append(f"{header.message_id}: {type(error).__name__}: {error_text(error)}")
        log.debug("message %s failed at %s", header.message_id, self.stage.ref, exc_info=True)
        return failed_fields(error)

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

    async def _storage(self, fn: Callable, *args) -> Any:
        """An object read or write, waiting out a failing storage (a full disk, an unreachable
        bucket, a dropped connection: `is_storage_fault`) with backoff for the storage budget: the
        stage waits meanwhile instead of failing its messages. Past the budget, or on an answer
        such as a missing object, the message fails with the storage's error."""
        budget, notice = self.services.budgets.storage_seconds, self.services.storage_notice
        result = await retry_async(
            lambda: self._object_io(fn, *args), is_fault=is_storage_fault, seconds=budget,
            first=STORAGE_RETRY_DELAYS[0], most=STORAGE_RETRY_DELAYS[1], on_fault=lambda error: notice.failed(error, budget),
        )
        notice.worked()
        return result


def run_stage(
    job: StageJob,
    inputs,
    store: ObjectStore,
    db: FactflowDatabase,
    http_factory: Callable[[], aiohttp.ClientSession],
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
