"""Which process runs an execution, and when it last said so (its heartbeat).

The process running a stage beats every few seconds. A reader decides the run is dead when the
process is gone (same host: the pid no longer exists) or the heartbeat is older than a timeout
(any host), instead of trusting a `running` status that a killed process can never change.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from .clock import as_utc, utcnow
from .db_schema import runners

#: A heartbeat older than this means the run's process is gone, whatever its host.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Runner:
    execution_id: str
    host: str
    pid: int
    dagster_run_id: str | None
    heartbeat_at: datetime

    def gone_because(self, now: datetime | None = None) -> str | None:
        """Why the process running the execution is known to be dead; None if it may be alive."""
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return f"its process (pid {self.pid} on {self.host}) is gone"
        age = (now or utcnow()) - self.heartbeat_at
        if age > STALE_AFTER:
            return f"its process (pid {self.pid} on {self.host}) has not reported for {int(age.total_seconds())} s"
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still has a pid; /proc says it is dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class RunnerStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def beat(self, execution_id: str, dagster_run_id: str | None) -> None:
        """Record that this process runs the execution, now."""
        values = {"host": socket.gethostname(), "pid": os.getpid(), "dagster_run_id": dagster_run_id, "heartbeat_at": utcnow()}
        with self.engine.begin() as conn:
            updated = conn.execute(update(runners).where(runners.c.execution_id == execution_id).values(**values)).rowcount
            if not updated:
                conn.execute(insert(runners).values(execution_id=execution_id, **values))

    def get(self, execution_id: str) -> Runner | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runners).where(runners.c.execution_id == execution_id)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["heartbeat_at"] = as_utc(data["heartbeat_at"])
        return Runner(**data)
