"""A link crawl's frontier: every URL one stage of one execution was given or found, in order.

A row is a page to fetch. Its key is the page's normalised URL, unique per stage, so a link found
on a hundred pages is queued once; `seq` is the order the crawl takes them in
(breadth first: a page's links come after every URL queued before it). Rows are never updated:
whether a page was fetched is its lineage row's business, so the frontier and the lineage cannot
disagree after a kill.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from .clock import utcnow
from .db_schema import frontier


@dataclass(frozen=True)
class FrontierEntry:
    key: str  # page_key of the URL
    url: str
    depth: int
    scope: str  # the prefix its seed set: the URLs it may lead to
    parent_lineage_id: str | None


@dataclass(frozen=True)
class FrontierRow:
    seq: int
    url: str
    depth: int
    scope: str
    parent_lineage_id: str | None


class FrontierStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, execution_id: str, route: str, stage: str, entries: list[FrontierEntry], room: int | None = None) -> int:
        """Queue the entries whose key is new to the stage, in order, at most `room` of them; how
        many were queued. One transaction: all of them or none."""
        if not entries:
            return 0
        where = (frontier.c.execution_id == execution_id, frontier.c.route == route, frontier.c.stage == stage)
        with self.engine.begin() as conn:
            keys = list(dict.fromkeys(entry.key for entry in entries))
            known: set[str] = set()
            for start in range(0, len(keys), 500):
                known.update(conn.execute(select(frontier.c.key).where(*where, frontier.c.key.in_(keys[start:start + 500]))).scalars())
            new = []
            for entry in entries:  # the first of each key, in the order given
                if entry.key not in known:
                    known.add(entry.key)
                    new.append(entry)
            if room is not None:
                new = new[: max(room, 0)]
            if not new:
                return 0
            now = utcnow()
            rows = [
                {
                    "execution_id": execution_id, "route": route, "stage": stage, "key": entry.key, "url": entry.url,
                    "depth": entry.depth, "scope": entry.scope, "parent_lineage_id": entry.parent_lineage_id,
                    "created_at": now,
                }
                for entry in new
            ]
            # a key another writer queued meanwhile is left as it is (a second crawl of the stage)
            dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(frontier).on_conflict_do_nothing(), rows)
        return len(new)

    def queued_after(self, execution_id: str, route: str, stage: str, after_seq: int, limit: int) -> list[FrontierRow]:
        """The next `limit` queued URLs after `after_seq`, in order."""
        query = (
            select(frontier.c.seq, frontier.c.url, frontier.c.depth, frontier.c.scope, frontier.c.parent_lineage_id)
            .where(
                frontier.c.execution_id == execution_id, frontier.c.route == route, frontier.c.stage == stage,
                frontier.c.seq > after_seq,
            )
            .order_by(frontier.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [FrontierRow(*row) for row in conn.execute(query)]

    def count(self, execution_id: str, route: str, stage: str) -> int:
        query = select(func.count()).where(
            frontier.c.execution_id == execution_id, frontier.c.route == route, frontier.c.stage == stage
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()
