"""CPU-bound work off the event loop, in worker processes that a bad page cannot take down for good.

The stage loop is one asyncio event loop; an adapter that parses HTML in it would stall every
fetch and storage write of the stage (architecture §2a). `WorkerPool` runs a plain function in a
process pool instead, at most `workers` calls at a time so a call's timeout measures its own
work, not its wait. A call that exceeds its timeout, or a worker that dies (a segfault in a C
parser, the OOM killer), costs that one message a `PermanentError`; the pool is replaced and the
next messages go on.

Workers start from a `forkserver`: forking the stage's own process, which runs threads (the I/O
pool, the lineage writer, Dagster's), could copy a lock held mid-operation into the child.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Any

from ..failures import PermanentError
from .worker_lifetime import FORKSERVER_PARENT, die_with_parent, worker_parent

DEFAULT_MAX_WORKERS = 4
STARTUP_TIMEOUT = 300.0  # seconds for the workers to start, whatever the per-message timeout


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, DEFAULT_MAX_WORKERS))


#: Imported by the forkserver before anything else: it makes the forkserver die with its parent.
LIFETIME_MODULE = "factflow_assets.workers.worker_lifetime"
#: Modules the forkserver imports before it forks a worker. One forkserver serves a process, so
#: every pool's modules are named before it starts (later ones are imported by each worker).
_PRELOAD: set[str] = set()


def _ask_preload(modules: list[str]) -> None:
    _PRELOAD.update(modules)
    multiprocessing.get_context("forkserver").set_forkserver_preload([LIFETIME_MODULE, *sorted(_PRELOAD)])


def start_forkserver(preload: list[str]) -> None:
    """Start this process's forkserver now, importing `preload` in its own process while this one
    goes on (a run's set-up: Dagster, the instance), so that a pool started later forks workers
    that are ready at once. Starting it is a matter of milliseconds here; the imports happen there.
    """
    _ask_preload(preload)
    os.environ[FORKSERVER_PARENT] = str(os.getpid())  # for the forkserver only, while it starts
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(FORKSERVER_PARENT, None)


def _start_worker(initializer: Callable[[], Any] | None) -> None:
    """In each new worker: die with the forkserver (so with the run), its own set-up, then freeze
    what the imports and the set-up made, so the collector no longer walks those objects on every
    full collection during the pages' work."""
    die_with_parent(worker_parent())
    if initializer is not None:
        initializer()
    gc.freeze()


class WorkerPool:
    def __init__(self, workers: int, timeout: float, preload: list[str], initializer: Callable[[], Any] | None = None):
        self.workers = workers
        self.timeout = timeout
        self._context = multiprocessing.get_context("forkserver")
        start_forkserver(preload)  # started here, not by the executor, so that it knows its parent
        self._initializer = initializer  # run once in each worker as it starts (load a tokenizer, ...)
        self._slots = asyncio.Semaphore(workers)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self._context, initializer=_start_worker, initargs=(self._initializer,)
        )

    async def run(self, function: Callable, *args: Any) -> Any:
        """`function(*args)` in a worker process.

        When a worker dies, every call in flight on that pool fails with it, and which one killed
        it is unknown: each is tried once more on a fresh pool, and only a second death is its own.
        """
        async with self._slots:
            for attempt in (1, 2):
                executor = self._executor
                future = asyncio.get_running_loop().run_in_executor(executor, function, *args)
                try:
                    return await asyncio.wait_for(future, self.timeout)
                except TimeoutError:
                    self._replace(executor, kill=True)
                    raise PermanentError(f"took longer than {self.timeout:g} s in a worker process") from None
                except BrokenProcessPool:
                    self._replace(executor, kill=False)
                    if attempt == 2:
                        raise PermanentError("the worker process died twice on this message (crash or out of memory)") from None

    async def start(self) -> None:
        """Start every worker now, so the first messages' durations measure their own work.

        Starting (the forkserver, the preloaded imports) is not a message: it is not held to the
        per-message timeout, which a user may set far below an import's second or two.
        """
        loop = asyncio.get_running_loop()
        started = asyncio.gather(*(loop.run_in_executor(self._executor, os.getpid) for _ in range(self.workers)))
        await asyncio.wait_for(started, STARTUP_TIMEOUT)

    def _replace(self, executor: ProcessPoolExecutor, kill: bool) -> None:
        """Swap in a fresh executor, once per broken one, and stop the old one's workers."""
        if executor is not self._executor:
            return  # another call already replaced it
        self._executor = self._new_executor()
        if kill:
            # ProcessPoolExecutor cannot cancel a running call (Python 3.14 adds
            # terminate_workers); ending its processes is the only way to get the CPU back.
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
