"""Replay: re-publish what a stage stored into the stages after it (architecture §5). Nothing is fetched.

In place (`--from-stage S`): a new run over the same partition, with the pipeline's YAML as it is
now, of every stage downstream of S (not S, nothing upstream of it), the first of them reading
what the execution stored for S. The run is a replay like one launched from Dagster
(`assets/run_kinds.py`): when it begins, the lineage rows of the replayed stages are marked as history
(so the skip rule redoes every message, even when only adapter code changed). Their objects are
replaced as the run goes: each new object is written over its old key, and once a replayed stage
has seen all its input it deletes the keys it did not write again, so no stale object is left and
no prefix is emptied and refilled.

Into a route (`--to-route R`): a new child execution of the pipeline owning R, whose first stage
of R reads every object the parent stored for S; nothing of the parent changes.

Everything is checked before anything changes: the execution is not running, the stage and route
exist, and every input object the lineage says was stored is still in storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import DagsterInstance

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import FactflowError, NotFoundError
from resources.executions_store import ExecutionRecord
from resources.replays_store import ReplayRecord
from resources.storage import ObjectStore, stage_prefix

from ..assets import tags
from ..config import Pipeline, Stage, load_pipeline
from ..engine.executions import ReplaySource, create_execution, frozen_pipeline
from ..engine.replay_checks import require_stored_outputs
from ..ids import new_replay_id
from ..settings import Settings
from .launch import RunPlan
from .status import refresh_status


@dataclass(frozen=True)
class ReplayRequest:
    execution: str  # id or tag
    from_stage: str  # "route/stage", or a stage name used in one route only
    to_route: str | None = None
    pipeline: str | None = None  # where to look for `to_route` when the execution's pipeline has none


@dataclass(frozen=True)
class ReplayPlan:
    run: RunPlan
    replay_id: str  # the replay record: written by the CLI for a child, by the run's asset in place
    input_from: str
    inputs: int


def plan_replay(settings: Settings, db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, request: ReplayRequest) -> ReplayPlan:
    """Check the request and prepare its run; for an in-place replay, supersede what it replaces."""
    record = refresh_status(db, instance, db.executions.resolve(request.execution))
    if record.active:
        raise FactflowError(f"execution {record.id} is {record.status}; wait for it or cancel it before replaying")
    frozen = frozen_pipeline(db, record.config_hash, record.pipeline)
    source = frozen.find_stage(request.from_stage)
    if request.to_route:
        return _plan_into_route(settings, db, store, instance, record, frozen, source, request)
    return _plan_in_place(settings, db, store, record, source)


def _plan_in_place(settings: Settings, db: FactflowDatabase, store: ObjectStore, record: ExecutionRecord, source: Stage) -> ReplayPlan:
    """Check, change nothing, and describe the run: the asset supersedes the replayed stages' rows
    and records the replay when the run begins (as for a replay launched from Dagster)."""
    current = load_pipeline(settings.pipelines_dir, record.pipeline)
    stage = current.stage(source.route.name, source.name)
    replayed = current.stages_after(stage.ref)
    if not replayed:
        raise FactflowError(nothing_downstream(record, stage))
    prefix = stage_prefix(record.id, stage.route.name, stage.name)
    inputs = require_stored_outputs(db, store, record.id, stage.route.name, stage.name, f"what {stage.ref} stored")
    db.executions.save_config(current.name, current.config_hash, current.text)  # by hash: what the run loads
    replay_id = new_replay_id()
    run = RunPlan(
        record,
        "replay",
        current.config_hash,
        tuple(s.ref for s in replayed),
        {tags.REPLAY_FROM: str(stage.ref), tags.REPLAY_ID: replay_id},
    )
    return ReplayPlan(run, replay_id, prefix, inputs)


def nothing_downstream(record: ExecutionRecord, stage: Stage) -> str:
    """The refusal for a replay from a stage that feeds nothing, naming the stage to use instead."""
    said = f"cannot replay: nothing is downstream of {stage.ref}, so a replay from it would run no stage"
    if stage.upstream is None:
        return f"{said}; it is where the pipeline starts: start a new execution to run it again"
    return (
        f"{said}; a replay re-runs the stages after the one named: to run {stage.ref} again, use "
        f"--from-stage {stage.upstream} (factflow execution replay {record.id} --from-stage {stage.upstream})"
    )


def _plan_into_route(
    settings: Settings,
    db: FactflowDatabase,
    store: ObjectStore,
    instance: DagsterInstance,
    record: ExecutionRecord,
    frozen: Pipeline,
    source: Stage,
    request: ReplayRequest,
) -> ReplayPlan:
    to_route = request.to_route
    assert to_route is not None  # a replay into a route names it
    target = _pipeline_owning(settings, frozen, to_route, request.pipeline)
    first = target.first_stage(to_route)
    prefix = stage_prefix(record.id, source.route.name, source.name)
    inputs = require_stored_outputs(db, store, record.id, source.route.name, source.name, f"what {source.ref} stored")
    replayed = target.downstream_of(first.ref)

    origin = ReplaySource(record.id, source.route.name, source.name, to_route)
    child = create_execution(
        db, target, parent_id=record.id, origin=origin.origin(), status="queued",
        overrides=record.overrides, init_payload=record.init_payload,  # the seed it really runs on: its parent's
    )
    instance.add_dynamic_partitions(target.name, [child.id])
    replay = ReplayRecord(
        id=new_replay_id(),
        execution_id=record.id,
        from_route=source.route.name,
        from_stage=source.name,
        to_route=request.to_route,
        target_execution_id=child.id,
        previous_config_hash=record.config_hash,
        config_hash=target.config_hash,
        superseded_rows=0,
        deleted_objects=0,
        created_at=utcnow(),
    )
    db.replays.add(replay)
    run = RunPlan(child, "replay", target.config_hash, tuple(s.ref for s in replayed), {tags.REPLAY_FROM: f"{record.id}:{source.ref}"})
    return ReplayPlan(run, replay.id, prefix, inputs)


def _pipeline_owning(settings: Settings, frozen: Pipeline, route: str, pipeline_name: str | None) -> Pipeline:
    """The pipeline (as its YAML is now) that runs `route`: the execution's own if its frozen config
    has the route, else the one named by `--pipeline`."""
    if route in frozen.route_names():
        name = frozen.name
    elif pipeline_name:
        name = pipeline_name
    else:
        raise NotFoundError(
            f"pipeline {frozen.name!r} has no route {route!r} (routes: {', '.join(frozen.route_names())}); "
            "name the pipeline that has it with --pipeline"
        )
    target = load_pipeline(settings.pipelines_dir, name)
    if route not in {s.route.name for s in target.stages}:
        known = ", ".join(dict.fromkeys(s.route.name for s in target.stages))
        raise NotFoundError(f"pipeline {target.name!r} runs no route {route!r} (routes: {known})")
    return target
