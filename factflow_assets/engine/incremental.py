"""Incremental executions: which earlier execution a new one compares with (`--since E|latest`).

The new execution asks the site only about what changed since that baseline and carries the rest
over (`StageRunner`): the baseline is recorded in the new execution's origin (`since`), so a run
launched from anywhere, and a resume, compare with the same one.
"""

from __future__ import annotations

from typing import Any

from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord
from resources.statuses import ACTIVE_STATUSES

LATEST = "latest"
#: How far back `latest` looks among one pipeline's executions for one with the same payload.
LATEST_SEARCH = 200


def baseline_for(db: FactflowDatabase, pipeline: str, init_payload: dict[str, Any], since: str) -> ExecutionRecord | None:
    """The execution `since` names for a new execution of `pipeline`; for `latest`, the newest
    completed one with the same init payload, or None (then the crawl is a full one).
    FactflowError (one line) for an unknown execution, a running one, or another pipeline's."""
    if since == LATEST:
        for record in db.executions.list(pipeline=pipeline, status="completed", limit=LATEST_SEARCH):
            if record.init_payload == init_payload:
                return record
        return None
    record = db.executions.resolve(since)
    if record.pipeline != pipeline:
        raise FactflowError(f"execution {record.id} is of pipeline {record.pipeline}, not {pipeline}: --since compares executions of one pipeline")
    if record.status in ACTIVE_STATUSES:
        raise FactflowError(f"execution {record.id} is {record.status}: --since needs one that has finished")
    return record
