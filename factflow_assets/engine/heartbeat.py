"""While a stage runs: say so in the factflow database, and listen for a cancel request.

The beat (host, pid, Dagster run id, time) is what lets any other process tell a live run from
one whose process was killed (`resources/runners_store.py`). The cancel request is Dagster's own
run status: `execution cancel` (or the UI) moves the run to CANCELING, and the stage loop then
stops taking messages and lets the ones in flight finish (DESIGN §6).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from resources.database import FactflowDatabase

log = logging.getLogger(__name__)

BEAT_INTERVAL = 2.0


class Heartbeat:
    def __init__(self, db: FactflowDatabase, execution_id: str, run_id: str, cancel_requested: Callable[[], bool], interval: float = BEAT_INTERVAL):
        self.db = db
        self.execution_id = execution_id
        self.run_id = run_id
        self.cancel_requested = cancel_requested
        self.interval = interval
        #: Set once a cancel was asked for; the stage loop reads it before taking each message.
        self.stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="factflow-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self._tick()
            except Exception:  # a missed beat must not stop the stage; the next one may get through
                log.warning("heartbeat of execution %s failed", self.execution_id, exc_info=True)

    def _tick(self) -> None:
        self.db.runners.beat(self.execution_id, self.run_id)
        if not self.stop.is_set() and self.cancel_requested():
            self.stop.set()
