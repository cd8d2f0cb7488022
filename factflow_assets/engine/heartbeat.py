"""While a run's stages run: say so in the factflow database, and relay cancel and pause to them.

Every beat (every 2 s):
- records host, pid, Dagster run id and time, which lets any other process tell a live run from
  one whose process was killed (`resources/runners_store.py`);
- records each stage's progress (inputs known, inputs taken) for `pipeline list`;
- reads the routes' states: a stage of a paused route takes no new message until it runs again;
- reads the cancel request, which is Dagster's own run status: `execution cancel` or the UI's
  "Terminate" moves the run to CANCELING (or, forced, CANCELED), and every stage then stops for
  good (architecture §6).
A pause or a cancel reaches the stages within one beat; messages in flight always finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from resources.database import FactflowDatabase
from resources.errors import error_text
from resources.route_state_store import PAUSED

from ..config import Stage
from .stream import RunControl

log = logging.getLogger(__name__)

BEAT_INTERVAL = 2.0


class Heartbeat:
    def __init__(
        self,
        db: FactflowDatabase,
        execution_id: str,
        run_id: str | None,
        stages: list[Stage],
        cancel_requested: Callable[[], bool],
        interval: float = BEAT_INTERVAL,
    ):
        self.db = db
        self.execution_id = execution_id
        self.run_id = run_id
        self.stages = stages
        self.cancel_requested = cancel_requested
        self.interval = interval
        self.control = RunControl()
        for stage in stages:
            self.control.stage(stage.ref)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="factflow-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        try:
            self._record_progress()  # the final count, for a stage that ended between two beats
        except Exception:
            log.warning("could not record the progress of execution %s at its end (the database is away?)", self.execution_id)

    def _loop(self) -> None:
        missed_since: float | None = None
        while not self._done.wait(self.interval):
            try:
                self._tick()
            except Exception as error:  # a missed beat must not stop the stages; a later one gets through
                if missed_since is None:  # one line when the beats start failing, one when they work again
                    missed_since = time.monotonic()
                    log.warning("heartbeat of execution %s failing (%s); the stages go on", self.execution_id, error_text(error).splitlines()[0])
                continue
            if missed_since is not None:
                log.warning("heartbeat of execution %s working again after %.0f s", self.execution_id, time.monotonic() - missed_since)
                missed_since = None

    def _tick(self) -> None:
        self.db.runners.beat(self.execution_id, self.run_id)
        self._record_progress()
        states = self.db.route_states.all()
        for stage in self.stages:
            state = states.get(stage.route.name)
            paused = self.control.stage(stage.ref).paused
            if state is not None and state.state == PAUSED:
                paused.set()
            else:
                paused.clear()
        if not self.control.stop.is_set() and self.cancel_requested():
            self.control.stop.set()

    def _record_progress(self) -> None:
        for stage in self.stages:
            control = self.control.stage(stage.ref)
            if control.inputs is not None:
                self.db.progress.record(self.execution_id, stage.route.name, stage.name, self.run_id, control.inputs, control.taken)
