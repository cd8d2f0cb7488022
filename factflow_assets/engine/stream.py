"""The stages a run selected, streaming together in one event loop (architecture §2.3–2.4).

Every selected stage runs its own loop (`StageRunner`) at once. A stage whose upstream stage is in
the run takes what that stage stores, through a bounded hand-off, as it is stored (across routes
too: the markdown route starts on the first stored page); one whose upstream is not in the run
reads what the execution stored for it; the first stage of the init route takes the init message.
When a stage has seen all of its input it reports a `StageOutcome` at once, so whoever drives the
run (the Dagster multi-asset) can report that stage while the others go on.

The loop runs in a thread of its own: the caller's thread stays free to receive outcomes and, for
Dagster, an interrupt (a terminated run), which it answers with `stop()`. The stages then take no
new message, finish the ones in flight and report. Nothing here knows about Dagster.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from resources.database import FactflowDatabase
from resources.storage import ObjectStore, stage_prefix

from ..config import Stage, StageRef
from ..fetching.network_policy import NetworkPolicy
from ..ids import new_batch_id
from ..workers.process_pool import start_forkserver
from .executions import ReplaySource
from .frontier import FrontierInput
from .handoff import Handoff
from .inputs import (
    HandedOnInput,
    InitInput,
    InputSource,
    ListedInput,
    StageInput,
    StoredInput,
)
from .stage_runner import IO_THREADS, StageRunner
from .stage_state import FaultBudgets, StageControl, StageJob, StageServices, StageSummary

#: Messages a hand-off holds per worker of the stage taking from it.
HANDOFF_PER_WORKER = 2
MIN_HANDOFF = 8


def warm_up(stages: list[Stage]) -> None:
    """Start the process that forks the stages' worker processes, importing what they need, as
    early as the caller knows the stages: it overlaps the run's own set-up (and returns at once)."""
    modules = sorted({module for stage in stages for module in stage.adapter_class.worker_modules})
    if modules:
        start_forkserver(modules)


@dataclass(frozen=True)
class StageSource:
    """Where one stage of a run takes its input from: a listed source (the init message, or a
    stored prefix), or None for "the stage before it, running alongside"."""

    stage: Stage
    listed: InputSource | None
    description: str  # for the materialisation: "init message", or the prefix read


def stage_sources(
    stages: list[Stage],
    execution_id: str,
    init_payload: dict,
    store: ObjectStore,
    replay_from: ReplaySource | None = None,
) -> list[StageSource]:
    """The input of each selected stage (in run order). `replay_from`: for a child made by a replay
    into a route, that route's first stage reads what the parent stored."""
    selected = {stage.ref for stage in stages}
    sources = []
    for stage in stages:
        if replay_from is not None and stage.index == 0 and stage.route.name == replay_from.to_route:
            prefix = stage_prefix(replay_from.parent_id, replay_from.from_route, replay_from.from_stage)
            sources.append(StageSource(stage, StoredInput(store, prefix), prefix))
        elif stage.upstream is None:
            sources.append(StageSource(stage, InitInput(stage.route.name, init_payload), "init message"))
        elif stage.upstream in selected:
            prefix = stage_prefix(execution_id, stage.upstream.route, stage.upstream.stage)
            sources.append(StageSource(stage, None, f"{prefix} (as {stage.upstream} stores it, in this run)"))
        else:
            prefix = stage_prefix(execution_id, stage.upstream.route, stage.upstream.stage)
            sources.append(StageSource(stage, StoredInput(store, prefix), prefix))
    return sources


@dataclass
class RunControl:
    """One stop for the whole run, and each stage's own control (its route may be paused)."""

    stop: threading.Event = field(default_factory=threading.Event)
    stages: dict[StageRef, StageControl] = field(default_factory=dict)

    def stage(self, ref: StageRef) -> StageControl:
        if ref not in self.stages:
            self.stages[ref] = StageControl(stop=self.stop)
        return self.stages[ref]


@dataclass(frozen=True)
class StageOutcome:
    stage: Stage
    batch_id: str
    summary: StageSummary
    input: str
    error: BaseException | None = None  # the loop itself broke (an adapter that could not open, ...)


_DONE = object()


class StreamRun:
    """Run some stages of one execution together; `outcomes()` yields each as it finishes."""

    def __init__(
        self,
        execution_id: str,
        config_hash: str,
        run_id: str | None,
        sources: list[StageSource],
        store: ObjectStore,
        db: FactflowDatabase,
        http_factory: Callable[[], aiohttp.ClientSession],
        control: RunControl | None = None,
        budgets: FaultBudgets | None = None,
        journal: Path | None = None,
        network: NetworkPolicy | None = None,
        baseline: str | None = None,
    ):
        self.execution_id = execution_id
        self.config_hash = config_hash
        self.run_id = run_id
        self.sources = sources
        self.store = store
        self.db = db
        self.http_factory = http_factory
        self.control = control or RunControl()
        self.budgets = budgets or FaultBudgets()
        self.journal = journal  # where lineage rows wait if the database goes away (`LineageWriter`)
        self.network = network  # the policy `http_factory`'s clients enforce, for adapters that make URLs
        self.baseline = baseline  # an incremental execution's baseline (`StageServices.baseline`)
        for source in sources:
            self.control.stage(source.stage.ref)
        self._outcomes: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._thread_main, name="factflow-stages", daemon=True)

    def start(self) -> StreamRun:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take no new message anywhere; the ones in flight finish and are recorded."""
        self.control.stop.set()

    def outcomes(self) -> Iterator[StageOutcome]:
        """Each stage's outcome as it finishes, until every stage has. Safe to call again after the
        caller was interrupted while waiting: it goes on where it stopped."""
        while True:
            item = self._outcomes.get()
            if item is _DONE:
                self._thread.join()
                return
            if isinstance(item, BaseException):  # the run itself broke, not one stage
                self._thread.join()
                raise item
            yield item

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # handed to the caller's thread, raised from outcomes()
            self._outcomes.put(error)
        finally:
            self._outcomes.put(_DONE)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        io = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="factflow-io")
        writer = self.db.lineage.writer(outage_budget=self.budgets.database_seconds, journal=self.journal)
        try:
            async with self.http_factory() as http:
                services = StageServices(self.store, self.db, http, io, writer, self.budgets, network=self.network, baseline=self.baseline)
                runners = self._runners(services)
                tasks = {asyncio.ensure_future(runner.run()): (order, runner, source) for order, (runner, source) in enumerate(runners)}
                pending = set(tasks)
                while pending:
                    finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    # a stage and the one it feeds finishing together are reported in run order
                    for task in sorted(finished, key=lambda t: tasks[t][0]):
                        _order, runner, source = tasks[task]
                        error = task.exception()
                        # the stage's rows are in the database before anyone reads them (checks)
                        await loop.run_in_executor(io, writer.drain)
                        self._outcomes.put(StageOutcome(runner.stage, runner.job.batch_id, runner.summary, source.description, error))
        finally:
            await loop.run_in_executor(io, writer.close)
            io.shutdown(wait=True)

    def _runners(self, services: StageServices) -> list[tuple[StageRunner, StageSource]]:
        inputs: dict[StageRef, StageInput] = {}
        handed: dict[StageRef, HandedOnInput] = {}  # the inputs one stage hands on to another
        for source in self.sources:
            stage = source.stage
            if source.listed is not None:
                inputs[stage.ref] = ListedInput(source.listed)
            else:
                assert stage.upstream is not None  # no listed input: it takes what the stage before it hands on
                capacity = max(HANDOFF_PER_WORKER * stage.route.concurrency, MIN_HANDOFF)
                reader = StoredInput(self.store, stage_prefix(self.execution_id, stage.upstream.route, stage.upstream.stage))
                inputs[stage.ref] = handed[stage.ref] = HandedOnInput(Handoff(capacity, self.control.stop), reader)
        runs_on = dict(inputs)
        for source in self.sources:  # a stage that follows links takes its frontier, seeded by its input
            if source.stage.adapter_class.follows_links:
                runs_on[source.stage.ref] = FrontierInput(inputs[source.stage.ref], self.db, self.execution_id, source.stage)
        runners = []
        for source in self.sources:
            stage = source.stage
            outputs = tuple(
                handed[other.stage.ref] for other in self.sources
                if other.listed is None and other.stage.upstream == stage.ref
            )
            job = StageJob(self.execution_id, stage, self.config_hash, self.run_id, new_batch_id())
            runners.append((StageRunner(job, runs_on[stage.ref], services, self.control.stage(stage.ref), outputs), source))
        return runners
