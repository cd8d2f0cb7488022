"""Incremental executions: which earlier execution a new one compares with (`--since E|latest`).

The new execution asks the site only about what changed since that baseline and carries the rest
over (`CarryOver`, used by each stage's runner): the baseline is recorded in the new execution's origin (`since`), so a run
launched from anywhere, and a resume, compare with the same one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from resources.database import FactflowDatabase
from resources.errors import FactflowError, NotFoundError
from resources.executions_store import ExecutionRecord
from resources.lineage_store import PriorInvocation
from resources.statuses import ACTIVE_STATUSES, WITH_OUTPUTS
from resources.storage import ObjectStore, stage_prefix

from .inputs import InputHeader
from .stage_state import StageJob

log = logging.getLogger(__name__)

LATEST = "latest"
#: How far back `latest` looks among one pipeline's executions for one with the same payload.
LATEST_SEARCH = 200


def baseline_for(db: FactflowDatabase, pipeline: str, init_payload: dict[str, Any], since: str) -> ExecutionRecord | None:
    """The execution `since` names for a new execution of `pipeline`; for `latest`, the newest
    completed one with the same init payload, or None (then the crawl is a full one).
    FactflowError (one line) for an unknown execution, a running one, or another pipeline's."""
    if since == LATEST:
        for record in db.executions.recent(pipeline=pipeline, status="completed", limit=LATEST_SEARCH):
            if record.init_payload == init_payload:
                return record
        return None
    record = db.executions.resolve(since)
    if record.pipeline != pipeline:
        raise FactflowError(f"execution {record.id} is of pipeline {record.pipeline}, not {pipeline}: --since compares executions of one pipeline")
    if record.status in ACTIVE_STATUSES:
        raise FactflowError(f"execution {record.id} is {record.status}: --since needs one that has finished")
    return record


Blocking = Callable[..., Awaitable[Any]]


class CarryOver:
    """One stage's view of the baseline (architecture §5a): what the baseline did with each
    message there, and its outputs copied over to this execution for an input that has not
    changed (rows `unchanged`), instead of made again. `database`, `io` and `storage` run a
    blocking call as the stage's runner does (off the loop, waiting out outages)."""

    def __init__(self, baseline: str | None, job: StageJob, store: ObjectStore, database: Blocking, io: Blocking, storage: Blocking):
        self.baseline, self.job, self.store = baseline, job, store
        self._database, self._io, self._storage = database, io, storage
        self.prior: dict[str, PriorInvocation] = {}
        self.stored: set[str] = set()

    async def load(self, db: FactflowDatabase) -> None:
        """Read the baseline's rows and keys at this stage (nothing without a baseline)."""
        if not self.baseline:
            return
        stage = self.job.stage
        self.prior = await self._database(db.lineage.prior_invocations, self.baseline, stage.route.name, stage.name)
        self.stored = set(await self._io(self.store.keys, stage_prefix(self.baseline, stage.route.name, stage.name)))
        gone = [p for p in self.prior.values() if p.status in WITH_OUTPUTS and not set(p.output_keys) <= self.stored]
        if gone:
            log.warning("%s: %d message(s) of the baseline %s lost objects from storage; they are done in full", stage.ref, len(gone), self.baseline)

    def of(self, header: InputHeader) -> PriorInvocation | None:
        """What the baseline did with this message here, when it can be carried over: done with
        outputs, under the same config, every output still stored."""
        before = self.prior.get(header.message_id)
        if (
            before is not None
            and before.status in WITH_OUTPUTS
            and before.config_hash == self.job.config_hash
            and before.output_keys
            and all(key in self.stored for key in before.output_keys)
        ):
            return before
        return None

    async def sidecar(self, before: PriorInvocation | None) -> dict | None:
        """The sidecar of the baseline's output, for an adapter that asks its source (one output)."""
        if before is None or not self.job.stage.adapter_class.asks_source or len(before.output_keys) != 1:
            return None
        try:
            return await self._storage(self.store.metadata, before.output_keys[0])
        except NotFoundError:
            return None

    async def outputs(self, before: PriorInvocation, row_id: str, read_sidecar: dict | None) -> list[tuple[dict, None]]:
        """The baseline's outputs, copied to this execution's keys with sidecars that name it
        (`read_sidecar`: the one output's sidecar, when the adapter's run read it already)."""
        job = self.job
        own = {"execution_id": job.execution_id, "lineage_id": row_id, "dagster_run_id": job.run_id}

        def carry(source: str) -> dict:
            key = f"executions/{job.execution_id}/{source.removeprefix(f'executions/{self.baseline}/')}"
            return self.store.carry(source, key, own, read_sidecar if len(before.output_keys) == 1 else None)

        # in the I/O threads even on a local disk: a carry creates files (a link and a sidecar) and
        # does nothing else, so on the event loop it would hold up every fetch of the stage's run
        sidecars = await asyncio.gather(*(self._io(carry, source) for source in before.output_keys))
        return [(sidecar, None) for sidecar in sidecars]
