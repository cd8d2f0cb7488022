"""The operator's questions about lineage, each one indexed SQL query (architecture §4, §7).

`lineage list|get|chain|children|failures|batch|stats` and `execution get` read through here.
Every query is answered by the database with an index (the chain by a recursive CTE over the
parent index), never by walking rows in Python, so they stay fast on millions of rows. Rows come
back as plain dicts with the column names as keys; timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql import Select

from .clock import as_utc
from .db_schema import lineage
from .errors import FactflowError, NotFoundError

#: Columns of a row in listings: everything but the traceback, which only `get` shows.
SUMMARY_COLUMNS = tuple(c for c in lineage.c if c.name != "error_traceback")
#: How far the chain follows parents or children: deeper than any pipeline, a guard against cycles.
MAX_CHAIN_DEPTH = 64
_TIME_FIELDS = ("started_at", "finished_at")


def _as_dict(row) -> dict[str, Any]:
    data = dict(row._mapping)
    for name in _TIME_FIELDS:
        if name in data:
            data[name] = as_utc(data[name])
    return data


class AmbiguousIdError(FactflowError):
    """A message id that names invocations in several places."""


class LineageQueries:
    def __init__(self, engine: Engine):
        self.engine = engine

    def _all(self, query: Select) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_as_dict(row) for row in conn.execute(query)]

    # --- one row -----------------------------------------------------------------------------

    def get(self, lineage_id: str) -> dict[str, Any] | None:
        rows = self._all(select(lineage).where(lineage.c.id == lineage_id))
        return rows[0] if rows else None

    def require(self, lineage_id: str) -> dict[str, Any]:
        row = self.get(lineage_id)
        if row is None:
            raise NotFoundError(f"no lineage row {lineage_id!r}")
        return row

    def invocations_of(self, message_id: str, execution_id: str | None = None) -> list[dict[str, Any]]:
        """The current invocations that took `message_id` as input, the latest attempt per stage."""
        conditions = [lineage.c.message_id == message_id, lineage.c.superseded.is_(False)]
        if execution_id:
            conditions.append(lineage.c.execution_id == execution_id)
        rows = self._all(select(*SUMMARY_COLUMNS).where(*conditions).order_by(lineage.c.attempt, lineage.c.id))
        latest = {(r["execution_id"], r["route"], r["stage"]): r for r in rows}  # later attempts win
        return list(latest.values())

    def producer_of(self, message_id: str, execution_id: str | None = None) -> list[dict[str, Any]]:
        """The invocations that wrote `message_id` (for messages no stage has taken as input yet).

        Output keys are not indexed: scoped to one execution this reads that execution's rows,
        unscoped it scans the table, which is why it is only the fallback of `resolve`.
        """
        conditions = [
            cast(lineage.c.output_keys, String).contains(f'/{message_id}"', autoescape=True),
            lineage.c.superseded.is_(False),
        ]
        if execution_id:
            conditions.append(lineage.c.execution_id == execution_id)
        return self._all(select(*SUMMARY_COLUMNS).where(*conditions).order_by(lineage.c.id).limit(10))

    def resolve(self, text: str, execution_id: str | None = None) -> dict[str, Any]:
        """The row an operator means by `text`: a lineage id, else a message id.

        A message id means the invocation that took it as input (the latest attempt), else the one
        that wrote it; when it names invocations in several executions or stages, AmbiguousIdError
        lists them so the operator can pick one or narrow with an execution.
        """
        if text.startswith(("http://", "https://")):
            return self._page_row(text, execution_id)
        row = self.get(text)
        if row is not None and (execution_id is None or row["execution_id"] == execution_id):
            return row
        candidates = self.invocations_of(text, execution_id) or self.producer_of(text, execution_id)
        if not candidates:
            scope = f" in execution {execution_id}" if execution_id else ""
            raise NotFoundError(f"no lineage row or message {text!r}{scope}")
        if len(candidates) > 1:
            where = ", ".join(f"{r['id']} ({r['execution_id']} {r['route']}/{r['stage']})" for r in candidates[:5])
            more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
            raise AmbiguousIdError(
                f"message {text!r} names {len(candidates)} invocations: {where}{more}; "
                "give a lineage id, or narrow with --execution"
            )
        return self.require(candidates[0]["id"])

    def _page_row(self, url: str, execution_id: str | None) -> dict[str, Any]:
        """The row a page URL means: the first current invocation whose metadata names it (its
        fetch; the chain from there holds all that was made of the page). Unscoped, it scans
        the table, and a page fetched by several executions asks for one of them."""
        conditions = [_url_is(url), lineage.c.superseded.is_(False)]
        if execution_id:
            conditions.append(lineage.c.execution_id == execution_id)
        rows = self._all(select(*SUMMARY_COLUMNS).where(*conditions).order_by(lineage.c.started_at, lineage.c.id).limit(1000))
        if not rows:
            scope = f" in execution {execution_id}" if execution_id else ""
            raise NotFoundError(f"no lineage row names the page {url}{scope}")
        executions = sorted({r["execution_id"] for r in rows})
        if len(executions) > 1:
            shown = ", ".join(executions[:5]) + (f" and {len(executions) - 5} more" if len(executions) > 5 else "")
            raise AmbiguousIdError(f"the page {url} is in {len(executions)} executions: {shown}; narrow with --execution")
        return self.require(rows[0]["id"])

    # --- relations ---------------------------------------------------------------------------

    def chain(self, lineage_id: str, max_descendants: int = 1000) -> list[dict[str, Any]]:
        """The row, its ancestors up to the init message and its descendants, with `depth`.

        Ancestors have negative depth, the row 0, descendants positive; sorted by depth then start.
        At most `max_descendants` descendants come back (nearest first).
        """
        up = (
            select(lineage.c.id, lineage.c.parent_lineage_id, literal(0).label("depth"))
            .where(lineage.c.id == lineage_id)
            .cte("ancestors", recursive=True)
        )
        up = up.union_all(
            select(lineage.c.id, lineage.c.parent_lineage_id, (up.c.depth - 1).label("depth")).where(
                lineage.c.id == up.c.parent_lineage_id, up.c.depth > -MAX_CHAIN_DEPTH
            )
        )
        down = select(lineage.c.id, literal(0).label("depth")).where(lineage.c.id == lineage_id).cte("descendants", recursive=True)
        down = down.union_all(
            select(lineage.c.id, (down.c.depth + 1).label("depth")).where(
                lineage.c.parent_lineage_id == down.c.id, down.c.depth < MAX_CHAIN_DEPTH
            )
        )
        ancestors = select(*SUMMARY_COLUMNS, up.c.depth).join(up, lineage.c.id == up.c.id)
        descendants = (
            select(*SUMMARY_COLUMNS, down.c.depth)
            .join(down, lineage.c.id == down.c.id)
            .where(down.c.depth > 0)
            .order_by(down.c.depth, lineage.c.started_at, lineage.c.id)
            .limit(max_descendants)
        )
        rows = self._all(ancestors) + self._all(descendants)
        if not rows:
            raise NotFoundError(f"no lineage row {lineage_id!r}")
        return sorted(rows, key=lambda r: (r["depth"], r["started_at"], r["id"]))

    def children(self, lineage_id: str) -> list[dict[str, Any]]:
        """The invocations that took an output of this row as their input."""
        return self._all(
            select(*SUMMARY_COLUMNS).where(lineage.c.parent_lineage_id == lineage_id).order_by(lineage.c.started_at, lineage.c.id)
        )

    # --- listings ----------------------------------------------------------------------------

    def rows(
        self,
        execution_id: str,
        *,
        status: str | None = None,
        adapter_type: str | None = None,
        route: str | None = None,
        stage: str | None = None,
        include_superseded: bool = False,
        url: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        conditions = [lineage.c.execution_id == execution_id]
        if url:
            conditions.append(_url_is(url))
        for column, value in ((lineage.c.status, status), (lineage.c.adapter_type, adapter_type), (lineage.c.route, route), (lineage.c.stage, stage)):
            if value:
                conditions.append(column == value)
        if not include_superseded:
            conditions.append(lineage.c.superseded.is_(False))
        query = select(*SUMMARY_COLUMNS).where(and_(*conditions)).order_by(lineage.c.started_at, lineage.c.id)
        return self._all(query.limit(limit).offset(offset))

    def current_outputs(self, execution_id: str, stages: list[tuple[str, str]], statuses: frozenset[str]) -> list[dict[str, Any]]:
        """Message id, status, output hash and metadata of the current rows of these (route,
        stage)s of one execution that ended in one of `statuses`."""
        if not stages:
            return []
        query = select(lineage.c.message_id, lineage.c.status, lineage.c.output_hash, lineage.c.metadata).where(
            lineage.c.execution_id == execution_id,
            lineage.c.superseded.is_(False),
            lineage.c.status.in_(sorted(statuses)),
            or_(*[and_(lineage.c.route == route, lineage.c.stage == stage) for route, stage in stages]),
        )
        return self._all(query)

    def current_objects(self, execution_id: str, route: str, stage: str, statuses: frozenset[str]) -> list[dict[str, Any]]:
        """Lineage id, message id, status, output keys, metadata and start of the current rows of one
        stage of one execution that ended in one of `statuses`, by message id."""
        query = (
            select(lineage.c.id, lineage.c.message_id, lineage.c.status, lineage.c.output_keys, lineage.c.metadata, lineage.c.started_at)
            .where(
                lineage.c.execution_id == execution_id,
                lineage.c.route == route,
                lineage.c.stage == stage,
                lineage.c.superseded.is_(False),
                lineage.c.status.in_(sorted(statuses)),
            )
            .order_by(lineage.c.message_id)
        )
        return self._all(query)

    def failures(self, execution_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Current failed invocations: of one execution oldest first, else of all newest first."""
        query = select(*SUMMARY_COLUMNS).where(lineage.c.status == "failed", lineage.c.superseded.is_(False))
        if execution_id:
            query = query.where(lineage.c.execution_id == execution_id).order_by(lineage.c.started_at, lineage.c.id)
        else:
            query = query.order_by(lineage.c.started_at.desc(), lineage.c.id.desc())
        return self._all(query.limit(limit))

    def batch(self, batch_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The invocations of one stage run (a batch is one run of one stage)."""
        return self._all(
            select(*SUMMARY_COLUMNS).where(lineage.c.batch_id == batch_id).order_by(lineage.c.started_at, lineage.c.id).limit(limit)
        )

    def stats(self, execution_id: str) -> list[dict[str, Any]]:
        """Per route and stage: counts by status and durations (mean, p50, p95, max, span).

        Percentiles are nearest-rank over the finished invocations, computed in SQL with window
        functions (the same on SQLite and PostgreSQL).
        """
        current = and_(lineage.c.execution_id == execution_id, lineage.c.superseded.is_(False))
        group = (lineage.c.route, lineage.c.stage)
        ranked = (
            select(
                lineage.c.route,
                lineage.c.stage,
                lineage.c.duration_ms,
                func.row_number().over(partition_by=group, order_by=lineage.c.duration_ms).label("rank"),
                func.count().over(partition_by=group).label("n"),
            )
            .where(current, lineage.c.duration_ms.is_not(None))
            .subquery()
        )

        percentiles = select(
            ranked.c.route,
            ranked.c.stage,
            func.max(case((ranked.c.rank == _nearest_rank(50, ranked.c.n), ranked.c.duration_ms))).label("p50_ms"),
            func.max(case((ranked.c.rank == _nearest_rank(95, ranked.c.n), ranked.c.duration_ms))).label("p95_ms"),
        ).group_by(ranked.c.route, ranked.c.stage)

        def count_of(status: str):
            return func.sum(case((lineage.c.status == status, 1), else_=0)).label(status)

        totals = (
            select(
                lineage.c.route,
                lineage.c.stage,
                lineage.c.adapter_type,
                func.count().label("count"),
                count_of("completed"),
                count_of("unchanged"),
                count_of("failed"),
                count_of("skipped"),
                count_of("pending"),
                count_of("cancelled"),
                func.avg(lineage.c.duration_ms).label("mean_ms"),
                func.max(lineage.c.duration_ms).label("max_ms"),
                func.sum(lineage.c.duration_ms).label("total_ms"),
                func.min(lineage.c.started_at).label("first_started_at"),
                func.max(lineage.c.finished_at).label("last_finished_at"),
            )
            .where(current)
            .group_by(lineage.c.route, lineage.c.stage, lineage.c.adapter_type)
        )
        with self.engine.connect() as conn:
            by_stage = {(r.route, r.stage): r for r in conn.execute(percentiles)}
            rows = []
            for row in conn.execute(totals.order_by(func.min(lineage.c.started_at))):
                data = dict(row._mapping)
                spread = by_stage.get((row.route, row.stage))
                data["p50_ms"] = spread.p50_ms if spread else None
                data["p95_ms"] = spread.p95_ms if spread else None
                first, last = as_utc(data.pop("first_started_at")), as_utc(data.pop("last_finished_at"))
                data["span_s"] = round((last - first).total_seconds(), 3) if first and last else None
                rows.append(data)
        return rows


def _nearest_rank(percent: int, count):
    """ceil(percent/100 * count) in integer arithmetic (SQLite may lack ceil())."""
    return (count * percent + 99) // 100


def _url_is(url: str):
    """Rows whose metadata names the page `url` (every stage a page's message went through
    carries it: INHERITED_FIELDS)."""
    return lineage.c.metadata["url"].as_string() == url
