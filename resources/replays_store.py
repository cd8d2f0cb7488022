"""The record of replays: what was replayed, from which stage, into which execution, with which
config, and what it superseded. An execution's own row keeps only its current config; this is
its history."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, or_, select, update

from .clock import as_utc
from .db_schema import replays
from .transactions import writing


@dataclass(frozen=True)
class ReplayRecord:
    id: str
    execution_id: str
    from_route: str
    from_stage: str
    to_route: str | None
    target_execution_id: str
    previous_config_hash: str
    config_hash: str
    superseded_rows: int
    deleted_objects: int
    created_at: datetime

    def to_dict(self) -> dict:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


class ReplayStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, record: ReplayRecord, conn: Connection | None = None) -> None:
        with writing(self.engine, conn) as conn:
            conn.execute(insert(replays).values(**asdict(record)))

    def count_deleted(self, replay_id: str, objects: int) -> None:
        """Add objects a replayed stage deleted as leftovers (known only once the stage has run)."""
        with self.engine.begin() as conn:
            conn.execute(update(replays).where(replays.c.id == replay_id).values(deleted_objects=replays.c.deleted_objects + objects))

    def get(self, replay_id: str) -> ReplayRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(replays).where(replays.c.id == replay_id)).first()
        return None if row is None else ReplayRecord(**{**row._mapping, "created_at": as_utc(row.created_at)})

    def involving(self, execution_id: str) -> list[ReplayRecord]:
        """Replays from this execution or into it, oldest first."""
        query = (
            select(replays)
            .where(or_(replays.c.execution_id == execution_id, replays.c.target_execution_id == execution_id))
            .order_by(replays.c.created_at)
        )
        with self.engine.connect() as conn:
            return [ReplayRecord(**{**row._mapping, "created_at": as_utc(row.created_at)}) for row in conn.execute(query)]

    def counts_within(self, execution_ids: list[str]) -> dict[str, dict[str, int]]:
        """How many times each execution was replayed in place, and into a route (each of those
        made a child execution): {"in_place": n, "into_routes": m}."""
        if not execution_ids:
            return {}
        into_route = replays.c.to_route.is_not(None)
        query = (
            select(replays.c.execution_id, into_route.label("into_route"), func.count())
            .where(replays.c.execution_id.in_(execution_ids))
            .group_by(replays.c.execution_id, into_route)
        )
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for execution_id, into, count in conn.execute(query):
                counts.setdefault(execution_id, {"in_place": 0, "into_routes": 0})["into_routes" if into else "in_place"] += count
        return counts
