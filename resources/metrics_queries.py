"""The aggregate queries behind `system metrics`: one SQL statement each, same on SQLite and
PostgreSQL, answered from indexes and the lineage table (never a storage scan)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, select

from .clock import utcnow
from .db_schema import executions, lineage

FINISHED = ("completed", "skipped", "failed")


def _count_if(condition):
    return func.sum(case((condition, 1), else_=0))


class MetricsQueries:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _all(self, query) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def executions_by_status(self) -> dict[str, int]:
        query = select(executions.c.status, func.count()).group_by(executions.c.status)
        with self.engine.connect() as conn:
            return {status: count for status, count in conn.execute(query)}

    def messages_by_stage(self, since: datetime) -> list[dict[str, Any]]:
        """Per route and stage, every invocation that finished (history included: a retried message
        was processed twice), in all and since `since`."""
        finished = lineage.c.status.in_(FINISHED)
        recent = lineage.c.finished_at >= since
        failed = lineage.c.status == "failed"
        query = (
            select(
                lineage.c.route,
                lineage.c.stage,
                _count_if(finished).label("processed"),
                _count_if(failed).label("failed"),
                _count_if(and_(finished, recent)).label("processed_last_hour"),
                _count_if(and_(failed, recent)).label("failed_last_hour"),
            )
            .group_by(lineage.c.route, lineage.c.stage)
            .order_by(lineage.c.route, lineage.c.stage)
        )
        return self._all(query)

    def throughput(self, execution_ids: list[str], window: timedelta) -> dict[str, dict[str, Any]]:
        """Per execution: invocations finished in the last `window`, in all, and the first start."""
        if not execution_ids:
            return {}
        since = utcnow() - window
        query = (
            select(
                lineage.c.execution_id,
                _count_if(lineage.c.status.in_(FINISHED)).label("finished"),
                _count_if(and_(lineage.c.status.in_(FINISHED), lineage.c.finished_at >= since)).label("finished_in_window"),
                func.min(lineage.c.started_at).label("first_started_at"),
            )
            .where(lineage.c.execution_id.in_(execution_ids))
            .group_by(lineage.c.execution_id)
        )
        return {row["execution_id"]: row for row in self._all(query)}

    def output_per_execution(self, limit: int) -> list[dict[str, Any]]:
        """Objects and bytes the current rows of the newest executions hold in storage."""
        newest = select(executions.c.id).order_by(executions.c.id.desc()).limit(limit).subquery()
        query = (
            select(
                executions.c.id.label("execution_id"),
                executions.c.pipeline,
                executions.c.status,
                func.coalesce(func.sum(lineage.c.output_count), 0).label("objects"),
                func.coalesce(func.sum(lineage.c.output_bytes), 0).label("bytes"),
            )
            .select_from(executions.join(newest, newest.c.id == executions.c.id))
            .outerjoin(
                lineage,
                and_(lineage.c.execution_id == executions.c.id, lineage.c.status == "completed", lineage.c.superseded.is_(False)),
            )
            .group_by(executions.c.id, executions.c.pipeline, executions.c.status)
            .order_by(executions.c.id.desc())
        )
        return self._all(query)

    def output_per_pipeline(self) -> list[dict[str, Any]]:
        """Executions, objects and bytes each pipeline keeps in storage (current rows): what
        retention would free."""
        query = (
            select(
                executions.c.pipeline,
                func.count(func.distinct(executions.c.id)).label("executions"),
                func.coalesce(func.sum(lineage.c.output_count), 0).label("objects"),
                func.coalesce(func.sum(lineage.c.output_bytes), 0).label("bytes"),
            )
            .select_from(executions)
            .outerjoin(
                lineage,
                and_(lineage.c.execution_id == executions.c.id, lineage.c.status == "completed", lineage.c.superseded.is_(False)),
            )
            .group_by(executions.c.pipeline)
            .order_by(executions.c.pipeline)
        )
        return self._all(query)
