"""How far each stage of a running execution has got: inputs listed, inputs taken.

Written by the stage's heartbeat every few seconds; lineage rows say what was done, this says
what is still waiting, which no lineage row can (a message not yet taken has no row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from .clock import utcnow
from .db_schema import stage_progress


@dataclass(frozen=True)
class StageProgress:
    route: str
    stage: str
    dagster_run_id: str | None
    inputs: int
    taken: int

    @property
    def waiting(self) -> int:
        return max(self.inputs - self.taken, 0)


class StageProgressStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, execution_id: str, route: str, stage: str, run_id: str | None, inputs: int, taken: int) -> None:
        key = (
            (stage_progress.c.execution_id == execution_id)
            & (stage_progress.c.route == route)
            & (stage_progress.c.stage == stage)
        )
        values = {"dagster_run_id": run_id, "inputs": inputs, "taken": taken, "updated_at": utcnow()}
        with self.engine.begin() as conn:
            if not conn.execute(update(stage_progress).where(key).values(**values)).rowcount:
                conn.execute(insert(stage_progress).values(execution_id=execution_id, route=route, stage=stage, **values))

    def of_execution(self, execution_id: str) -> list[StageProgress]:
        query = select(stage_progress).where(stage_progress.c.execution_id == execution_id)
        with self.engine.connect() as conn:
            return [
                StageProgress(row.route, row.stage, row.dagster_run_id, row.inputs, row.taken)
                for row in conn.execute(query)
            ]
