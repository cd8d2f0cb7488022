"""Which routes are paused: one row per route id, read by every stage loop (architecture §6).

A route id is global: pausing `markdown_processor` pauses that route in every execution of every
pipeline that has it. A route with no row is running; `resume` deletes nothing, it writes
`running`, so the table also says when each route last changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from .clock import as_utc, utcnow
from .db_schema import route_state

PAUSED = "paused"
RUNNING = "running"


@dataclass(frozen=True)
class RouteState:
    route: str
    state: str
    updated_at: datetime


class RouteStateStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def set(self, route: str, state: str) -> None:
        if state not in (PAUSED, RUNNING):
            raise ValueError(f"a route is {PAUSED} or {RUNNING}, not {state!r}")
        values = {"state": state, "updated_at": utcnow()}
        with self.engine.begin() as conn:
            if not conn.execute(update(route_state).where(route_state.c.route == route).values(**values)).rowcount:
                conn.execute(insert(route_state).values(route=route, **values))

    def is_paused(self, route: str) -> bool:
        with self.engine.connect() as conn:
            state = conn.execute(select(route_state.c.state).where(route_state.c.route == route)).scalar()
        return state == PAUSED

    def all(self) -> dict[str, RouteState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(route_state)).all()
        return {row.route: RouteState(row.route, row.state, as_utc(row.updated_at)) for row in rows}
