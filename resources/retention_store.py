"""The rows an execution has in the factflow database, counted and deleted for retention.

Deleted in the order the foreign keys ask (rows that name the execution before the execution),
in one transaction: an execution's rows go all together or not at all.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, or_, select

from .db_schema import deliveries, executions, frontier, lineage, replays, runners, stage_progress


class RetentionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def lineage_rows(self, execution_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(lineage.c.execution_id == execution_id)).scalar_one()

    def delete_rows(self, execution_id: str) -> int:
        """Every row naming the execution, then the execution; how many lineage rows went."""
        with self.engine.begin() as conn:
            removed = conn.execute(delete(lineage).where(lineage.c.execution_id == execution_id)).rowcount
            conn.execute(delete(replays).where(or_(replays.c.execution_id == execution_id, replays.c.target_execution_id == execution_id)))
            conn.execute(delete(runners).where(runners.c.execution_id == execution_id))
            conn.execute(delete(stage_progress).where(stage_progress.c.execution_id == execution_id))
            conn.execute(delete(deliveries).where(deliveries.c.execution_id == execution_id))
            conn.execute(delete(frontier).where(frontier.c.execution_id == execution_id))
            conn.execute(delete(executions).where(executions.c.id == execution_id))
        return removed
