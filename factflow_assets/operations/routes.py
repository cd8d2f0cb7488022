"""Pause and resume routes, and what every active route of every running execution is doing.

A route id is global (architecture §6): pausing `sitemap_scraper` pauses it in every execution whose
pipeline has it, running now or started later, until it is resumed. The state is a row in the
factflow database that each stage's heartbeat reads, so any process can pause a run that
another process executes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from resources.database import FactflowDatabase
from resources.errors import NotFoundError
from resources.route_state_store import PAUSED, RUNNING

from ..settings import Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance


@dataclass(frozen=True)
class RouteActivity:
    """One route of one active execution."""

    execution_id: str | None  # None: a paused route no active execution runs
    pipeline: str | None
    route: str
    state: str  # running | paused; an execution that ended: its status
    in_flight: int  # messages taken, not finished
    done: int  # completed, unchanged or skipped
    failed: int
    pending: int  # listed by a stage of the route in the current run, not taken yet

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RouteChange:
    route: str
    state: str
    executions: list[str]  # active executions that have the route


def known_routes(settings: Settings, db: FactflowDatabase) -> set[str]:
    """Route ids of every valid pipeline in the pipelines directory and of every active execution."""
    from ..config import validate_directory  # every adapter: only when a route is named
    from ..engine.executions import frozen_pipeline

    routes = {route for result in validate_directory(settings.pipelines_dir) if result.pipeline for route in result.pipeline.route_names()}
    for record in db.executions.active():
        routes.update(frozen_pipeline(db, record.config_hash, record.pipeline).route_names())
    return routes


def set_route_state(settings: Settings, db: FactflowDatabase, route: str, state: str) -> RouteChange:
    """Pause or resume `route` everywhere; NotFoundError for a route no pipeline has."""
    known = known_routes(settings, db)
    if route not in known and route not in db.route_states.all():
        listing = ", ".join(sorted(known)) or "none"
        raise NotFoundError(f"no pipeline has a route {route!r} (routes: {listing})")
    db.route_states.set(route, state)
    from ..engine.executions import frozen_pipeline

    affected = [r.id for r in db.executions.active() if route in frozen_pipeline(db, r.config_hash, r.pipeline).route_names()]
    return RouteChange(route, state, affected)


def pause_route(settings: Settings, db: FactflowDatabase, route: str) -> RouteChange:
    return set_route_state(settings, db, route, PAUSED)


def resume_route(settings: Settings, db: FactflowDatabase, route: str) -> RouteChange:
    return set_route_state(settings, db, route, RUNNING)


def paused_routes(db: FactflowDatabase) -> list[str]:
    return sorted(route for route, state in db.route_states.all().items() if state.state == PAUSED)


def execution_routes(db: FactflowDatabase, instance: Callable[[], DagsterInstance], execution: str) -> list[RouteActivity]:
    """Every route of one execution (id or tag), whatever its status: an execution that ended
    shows what each route did, nothing in flight. Dagster's instance is opened (`instance()`) only
    for an active execution, whose status its runs may have moved on."""
    record = db.executions.resolve(execution)
    if record.active:
        from .status import refresh_status

        record = refresh_status(db, instance(), record)
    return _routes_of(db, record, db.route_states.all())


def _routes_of(db: FactflowDatabase, record, states: dict) -> list[RouteActivity]:
    """The execution's routes; a route's state is its pause state while the execution is active,
    else the execution's own status (a route of a completed execution is not `running`)."""
    from ..engine.executions import frozen_pipeline
    from .stage_counts import stage_progress

    pipeline = frozen_pipeline(db, record.config_hash, record.pipeline)
    waiting: dict[str, int] = {}
    for progress in db.progress.of_execution(record.id):
        if progress.dagster_run_id == record.dagster_run_id:
            waiting[progress.route] = waiting.get(progress.route, 0) + progress.waiting
    counts: dict[str, dict[str, int]] = {}
    for row in stage_progress(db, record, pipeline):
        route = counts.setdefault(row["route"], {"in_flight": 0, "done": 0, "failed": 0})
        route["in_flight"] += row["in_flight"]
        route["done"] += row["completed"] + row["unchanged"] + row["skipped"]
        route["failed"] += row["failed"]
    return [
        RouteActivity(
            record.id, record.pipeline, route, (states[route].state if route in states else RUNNING) if record.active else record.status,
            **counts[route], pending=waiting.get(route, 0),
        )
        for route in pipeline.route_names()
    ]


def active_routes(db: FactflowDatabase, instance: Callable[[], DagsterInstance]) -> list[RouteActivity]:
    """Every route of every queued or running execution (statuses refreshed first, so a run whose
    process died does not show as running), in execution order then run order; then every paused
    route that no active execution runs, so a pause made while nothing runs is seen too.
    `instance` opens Dagster's instance: only when an execution is active (0.1 s instead of 2)."""
    states = db.route_states.all()
    activities = []
    for record in db.executions.active():
        from .status import refresh_status  # Dagster: only an active execution needs it

        record = refresh_status(db, instance(), record)
        if record.active:
            activities += _routes_of(db, record, states)
    shown = {activity.route for activity in activities}
    for route in paused_routes(db):
        if route not in shown:
            activities.append(RouteActivity(None, None, route, PAUSED, in_flight=0, done=0, failed=0, pending=0))
    return activities
