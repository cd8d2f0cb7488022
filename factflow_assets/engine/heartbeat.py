"""While a stage runs: say so in the factflow database, and relay cancel and pause to its loop.

Every beat (every 2 s):
- records host, pid, Dagster run id and time, which lets any other process tell a live run from
  one whose process was killed (`resources/runners_store.py`);
- records the stage's progress (inputs listed, inputs taken) for `pipeline list`;
- reads the route's state: paused → the loop takes no new message until it is running again;
- reads the cancel request, which is Dagster's own run status: `execution cancel` (or the UI)
  moves the run to CANCELING, and the loop then stops for good (DESIGN §6).
A pause or a cancel reaches the loop within one beat; messages in flight always finish.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from resources.database import FactflowDatabase

from .stage_runner import StageControl, StageJob

log = logging.getLogger(__name__)

BEAT_INTERVAL = 2.0


class Heartbeat:
    def __init__(self, db: FactflowDatabase, job: StageJob, cancel_requested: Callable[[], bool], interval: float = BEAT_INTERVAL):
        self.db = db
        self.job = job
        self.cancel_requested = cancel_requested
        self.interval = interval
        self.control = StageControl()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="factflow-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        try:
            self._record_progress()  # the final count, for a stage that ended between two beats
        except Exception:
            log.warning("could not record the progress of execution %s", self.job.execution_id, exc_info=True)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self._tick()
            except Exception:  # a missed beat must not stop the stage; the next one may get through
                log.warning("heartbeat of execution %s failed", self.job.execution_id, exc_info=True)

    def _tick(self) -> None:
        job, control = self.job, self.control
        self.db.runners.beat(job.execution_id, job.run_id)
        self._record_progress()
        if self.db.route_states.is_paused(job.stage.route.name):
            control.paused.set()
        else:
            control.paused.clear()
        if not control.stop.is_set() and self.cancel_requested():
            control.stop.set()

    def _record_progress(self) -> None:
        job, control = self.job, self.control
        if control.inputs is not None:
            self.db.progress.record(job.execution_id, job.stage.route.name, job.stage.name, job.run_id, control.inputs, control.taken)
