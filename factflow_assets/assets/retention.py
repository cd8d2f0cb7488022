"""Retention: delete executions everywhere they live, one by one or by a rule (prune).

An execution lives in four places: its objects in storage, its rows in the factflow database
(lineage, replays, runner and progress rows, the execution itself), its Dagster partition, and its
Dagster runs with their event logs. Deleting goes in an order a crash part-way can finish by
running the same command again: the execution is first marked `deleting` (so `execution get` says
it is half-deleted), then its objects, its Dagster runs and partition, its journals, and its rows
last. Every step deletes what is left and is happy to find nothing.

A running execution is refused; so is one whose objects or rows a child execution (a replay into a
route) still reads, unless the children go too (`with_children`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from dagster import DagsterInstance

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.executions_store import ExecutionRecord
from resources.storage import ObjectStore, execution_prefix

from ..config import load_pipeline
from ..settings import Settings
from .runs import execution_runs

DELETING = "deleting"
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` as a duration; FactflowError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise FactflowError(f"{text!r} is not an age: a number and one of s, m, h, d, w (30d, 12h)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@dataclass
class Doomed:
    """One execution to delete, and what deleting it removes."""

    record: ExecutionRecord
    objects: int = 0
    bytes: int = 0
    lineage_rows: int = 0
    runs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "execution_id": self.record.id, "pipeline": self.record.pipeline, "status": self.record.status,
            "created_at": self.record.created_at, "objects": self.objects, "bytes": self.bytes,
            "lineage_rows": self.lineage_rows, "runs": len(self.runs),
        }


def plan_delete(db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, records: list[ExecutionRecord], with_children: bool) -> list[Doomed]:
    """What deleting these executions (their statuses freshly read) removes, children first;
    FactflowError for a running execution, or a parent whose children stay."""
    chosen: dict[str, ExecutionRecord] = {}
    for record in records:
        for member in _with_descendants(db, record, with_children):
            chosen[member.id] = member
    for record in chosen.values():
        if record.active:
            raise FactflowError(f"execution {record.id} is {record.status}; cancel it (factflow execution cancel {record.id}) before deleting it")
    # children before their parents: a child's rows point at its parent's
    ordered = sorted(chosen.values(), key=lambda r: _depth(db, r), reverse=True)
    return [_measure(db, store, instance, record) for record in ordered]


def _with_descendants(db: FactflowDatabase, record: ExecutionRecord, with_children: bool) -> list[ExecutionRecord]:
    children = db.executions.children(record.id)
    if children and not with_children:
        listed = ", ".join(child.id for child in children)
        raise FactflowError(f"execution {record.id} has child execution(s) {listed} that read its objects; delete them too with --with-children")
    found = [record]
    for child in children:
        found += _with_descendants(db, child, with_children)
    return found


def _depth(db: FactflowDatabase, record: ExecutionRecord) -> int:
    depth, parent = 0, record.parent_id
    while parent:
        depth += 1
        parent_record = db.executions.get(parent)
        parent = parent_record.parent_id if parent_record else None
    return depth


def _measure(db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, record: ExecutionRecord) -> Doomed:
    doomed = Doomed(record, lineage_rows=db.retention.lineage_rows(record.id), runs=[r.dagster_run.run_id for r in execution_runs(instance, record.id)])
    for info in store.objects(execution_prefix(record.id)):
        doomed.objects += 1
        doomed.bytes += info.size
    return doomed


def delete(settings: Settings, db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, doomed: Doomed) -> None:
    """Delete one execution everywhere, in an order a second try finishes (module docstring)."""
    record = doomed.record
    db.executions.set_status(record.id, DELETING, error="deleting: run `factflow execution delete` again if this stays")
    store.delete_prefix(execution_prefix(record.id))
    for run in execution_runs(instance, record.id):
        instance.delete_run(run.dagster_run.run_id)
    if instance.has_dynamic_partition(record.pipeline, record.id):
        instance.delete_dynamic_partition(record.pipeline, record.id)
    for journal in (settings.home / "journal").glob(f"{record.id}-*.jsonl"):
        journal.unlink(missing_ok=True)
    db.retention.delete_rows(record.id)


def select_for_prune(
    db: FactflowDatabase,
    pipeline: str | None,
    keep: int | None,
    older_than: timedelta | None,
    statuses: tuple[str, ...],
) -> list[ExecutionRecord]:
    """Executions a prune deletes: of those that match (pipeline, statuses; never an active one),
    all but the newest `keep`, and of those only the ones older than `older_than`; and first,
    whatever the filter, every one of the pipeline a delete left half done (`deleting`): what a
    prune started, a prune finishes."""
    if keep is None and older_than is None:
        raise FactflowError("say what to keep: --keep N, --older-than AGE, or both")
    listed = db.executions.recent(pipeline=pipeline, limit=1_000_000)
    unfinished = [r for r in listed if r.status == DELETING]
    matching = [r for r in listed if not r.active and r.status != DELETING and (not statuses or r.status in statuses)]
    candidates = matching[keep:] if keep is not None else matching  # newest first: the first `keep` stay
    if older_than is not None:
        cutoff = utcnow() - older_than
        candidates = [r for r in candidates if r.created_at < cutoff]
    return unfinished + candidates


def spare_parents_of_kept(db: FactflowDatabase, chosen: list[ExecutionRecord]) -> tuple[list[ExecutionRecord], list[ExecutionRecord]]:
    """(`chosen` less every execution a kept execution reads, directly or through a chain; those
    spared). A prune never deletes a child it was told to keep by deleting its parent."""
    chosen, spared = list(chosen), list[ExecutionRecord]()
    while True:
        ids = {record.id for record in chosen}
        newly = [record for record in chosen if any(child.id not in ids for child in db.executions.children(record.id))]
        if not newly:
            return chosen, spared
        spared += newly
        chosen = [record for record in chosen if record not in newly]


def apply_retention(settings: Settings, db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, pipeline_name: str, finished_id: str) -> list[str]:
    """The pipeline YAML's `retention:` once the scheduled execution `finished_id` did its job
    (still `running` while its run ends, it counts as the newest kept): the executions deleted.
    A parent whose child the rule keeps is skipped, as is one that started meanwhile."""
    spec = load_pipeline(settings.pipelines_dir, pipeline_name).spec.retention
    if spec is None:
        return []
    deleted = []
    older = parse_age(spec.older_than) if spec.older_than else None
    keep = spec.keep - 1 if spec.keep is not None else None
    for record in select_for_prune(db, pipeline_name, keep, older, ()):
        if record.id == finished_id:
            continue
        try:
            for doomed in plan_delete(db, store, instance, [record], with_children=False):
                delete(settings, db, store, instance, doomed)
                deleted.append(doomed.record.id)
        except FactflowError:
            continue
    return deleted
