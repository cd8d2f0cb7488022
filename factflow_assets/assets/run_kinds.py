"""Every Dagster run of a pipeline is a factflow operation, whoever launched it (architecture §2b).

The CLI, the Dagster UI, `dagster asset materialize`, schedules, backfills and the GraphQL API all
end in the same asset code, which decides what the run is from the partition (the execution id),
the stages the run selected, its Dagster tags and the execution's state, never from who launched
it:

| the run                                                        | is          |
|----------------------------------------------------------------|-------------|
| on a partition with no execution yet, every stage              | a new execution (recorded with the YAML as it is now) |
| the first run of an execution already recorded (CLI start, a schedule's tick, a replay's child) | its first run |
| Dagster's "re-execute from failure" (`dagster/is_resume_retry`) | a resume: done messages skipped |
| any other run on an execution that ran (UI "Materialize", a backfill, "re-execute") | a replay of the selected stages, inputs from storage |

factflow's own tags (`factflow/replay_from`, `factflow/replay_id`, `factflow/config_hash`) only add
detail when the CLI launched the run; nothing depends on them. What the run turned out to be is
written back onto it as tags, so `execution get` shows every run's kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord
from resources.replays_store import ReplayRecord
from resources.storage import ObjectStore, execution_prefix

from ..config import Pipeline, Stage, StageRef
from ..engine.executions import create_execution, frozen_pipeline, replay_source
from ..engine.replay_checks import require_resume_inputs, require_stored_outputs
from ..ids import new_replay_id
from . import tags

START = "start"  # an execution's first run
REPLAY = "replay"  # the selected stages again, from storage
RESUME = "resume"  # continue: what is done is skipped
DATASET = "dataset"  # the dataset written again from what the stages hold; no stage runs

#: A partition added in the UI becomes an execution id, a storage key segment and a lineage column.
EXECUTION_KEY = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._=-]{1,40}$")

#: A replay of every stage starts from the init message: its "from" in the replay record.
INIT_MESSAGE = "init_message"


@dataclass(frozen=True)
class RunFacts:
    """What a Dagster run says about itself, as the asset reads it."""

    run_id: str
    execution_id: str  # the partition key
    selected: tuple[StageRef, ...]  # in run order
    tags: Mapping[str, str]
    earlier_runs: int  # Dagster runs of the partition before this one


@dataclass(frozen=True)
class Operation:
    """What the run does, decided and recorded before any stage starts."""

    kind: str  # START | REPLAY | RESUME
    record: ExecutionRecord
    pipeline: Pipeline  # the config the stages run with
    stages: list[Stage]  # the selected stages, in run order
    replay: ReplayRecord | None = None

    def run_tags(self) -> dict[str, str]:
        """Tags written back onto the run, so every run of an execution says what it was (the
        first run of a child made by a replay into a route is that replay)."""
        child_of = replay_source(self.record) if self.kind == START else None
        found = {
            tags.EXECUTION_ID: self.record.id,
            tags.PIPELINE: self.record.pipeline,
            tags.CONFIG_HASH: self.pipeline.config_hash,
            tags.RUN_KIND: REPLAY if child_of else self.kind,
        }
        if child_of is not None:
            found[tags.REPLAY_FROM] = f"{child_of.parent_id}:{child_of.from_route}/{child_of.from_stage}"
        if self.replay is not None:
            found[tags.REPLAY_ID] = self.replay.id
            found[tags.REPLAY_FROM] = (
                f"{self.replay.execution_id}:{self.replay.from_route}/{self.replay.from_stage}"
                if self.replay.to_route
                else f"{self.replay.from_route}/{self.replay.from_stage}"
            )
        return found


def launched_by(run_tags: Mapping[str, str]) -> str:
    """Who asked for a run, in a word, for an execution a Dagster run created."""
    if tags.SCHEDULE in run_tags:
        return "schedule"
    if tags.SENSOR in run_tags:
        return "sensor"
    if tags.BACKFILL in run_tags:
        return "backfill"
    return "dagster"


def classify(record: ExecutionRecord | None, facts: RunFacts) -> str:
    if record is None or not facts.earlier_runs:
        return START
    if facts.tags.get(tags.RESUME_RETRY) == "true":
        return RESUME
    return REPLAY


def begin(db: FactflowDatabase, store: ObjectStore, current: Pipeline, facts: RunFacts) -> Operation:
    """Decide what the run is and record it: a new execution, a replay's superseded rows and
    record. Everything a replay checks is checked before anything is written."""
    record = db.executions.get(facts.execution_id)
    kind = classify(record, facts)
    if record is None:
        if not EXECUTION_KEY.match(facts.execution_id):
            raise FactflowError(
                f"partition {facts.execution_id!r} cannot name an execution: use 1 to 40 letters, digits, '.', '_', '=' or '-' "
                "(its objects are stored under executions/<id>/)"
            )
        every = tuple(stage.ref for stage in current.stages)
        if facts.selected != every:
            raise FactflowError(
                f"partition {facts.execution_id} has no execution yet: materialise every stage of {current.name} "
                "to start one (a subset of stages can only replay an execution that ran)"
            )
        record = create_execution(
            db, current, execution_id=facts.execution_id, status="queued", origin={"kind": launched_by(facts.tags), "run_id": facts.run_id}
        )
    if kind == RESUME:  # checked before anything changes, like a replay's input
        resumed = frozen_pipeline(db, facts.tags.get(tags.CONFIG_HASH) or record.config_hash, record.pipeline)
        require_resume_inputs(db, store, record.id, _stages(resumed, facts.selected))
    if kind in (REPLAY, RESUME):  # what a killed writer left half-written goes before anything is written again
        store.remove_partials(execution_prefix(record.id))
        db.lineage.close_stale_pending(record.id, facts.run_id, "an earlier run left it unfinished")
    if kind == REPLAY:
        operation = _begin_replay(db, store, current, record, facts)
    else:
        pipeline = frozen_pipeline(db, facts.tags.get(tags.CONFIG_HASH) or record.config_hash, record.pipeline)
        operation = Operation(kind, record, pipeline, _stages(pipeline, facts.selected))
    db.executions.set_status(record.id, "running", run_id=facts.run_id)
    return operation


def _stages(pipeline: Pipeline, selected: tuple[StageRef, ...]) -> list[Stage]:
    """The selected stages as `pipeline` defines them, in its run order."""
    wanted = set(selected)
    missing = wanted - {stage.ref for stage in pipeline.stages}
    if missing:
        raise FactflowError(
            f"stage(s) {', '.join(sorted(map(str, missing)))} are not in the config this run uses ({pipeline.config_hash[:12]}); "
            "replay from a stage that exists instead"
        )
    return [stage for stage in pipeline.stages if stage.ref in wanted]


def _begin_replay(db: FactflowDatabase, store: ObjectStore, current: Pipeline, record: ExecutionRecord, facts: RunFacts) -> Operation:
    """A replay runs the selected stages with the YAML as it is now, each whose upstream is not in
    the run reading what the execution stored for that upstream."""
    stages = _stages(current, facts.selected)
    selected = {stage.ref for stage in stages}
    source = replay_source(record)
    for stage in stages:
        if stage.upstream is not None and stage.upstream not in selected:
            if source is not None and stage.index == 0 and stage.route.name == source.to_route:
                require_stored_outputs(
                    db,
                    store,
                    source.parent_id,
                    source.from_route,
                    source.from_stage,
                    f"what {source.from_route}/{source.from_stage} of {source.parent_id} stored",
                )
            else:
                require_stored_outputs(db, store, record.id, stage.upstream.route, stage.upstream.stage, f"what {stage.upstream} stored")
    first = stages[0]
    if facts.tags.get(tags.REPLAY_FROM) and ":" not in facts.tags[tags.REPLAY_FROM]:
        from_route, _, from_stage = facts.tags[tags.REPLAY_FROM].partition("/")
    elif first.upstream is not None:
        from_route, from_stage = first.upstream.route, first.upstream.stage
    else:
        from_route, from_stage = first.route.name, INIT_MESSAGE

    replay_id = facts.tags.get(tags.REPLAY_ID)
    if not replay_id or db.replays.get(replay_id) is not None:  # a re-execution copies its parent's tags
        replay_id = new_replay_id()
    with db.transaction() as conn:  # all of it, or nothing: a replay half begun is no replay
        superseded = db.lineage.supersede(record.id, [(stage.route.name, stage.name) for stage in stages], conn=conn)
        db.executions.save_config(current.name, current.config_hash, current.text, conn=conn)
        replay = ReplayRecord(
            id=replay_id,
            execution_id=record.id,
            from_route=from_route,
            from_stage=from_stage,
            to_route=None,
            target_execution_id=record.id,
            previous_config_hash=record.config_hash,
            config_hash=current.config_hash,
            superseded_rows=superseded,
            deleted_objects=0,  # counted by the stages as they delete what they did not write again
            created_at=utcnow(),
        )
        db.replays.add(replay, conn=conn)
        db.executions.set_config(record.id, current.config_hash, conn=conn)
    return Operation(REPLAY, db.executions.resolve(record.id), current, stages, replay)
