"""Delete and prune: which executions go, what they take with them, and the deleting, for
`factflow execution delete|prune` (architecture §7).

The rules and the deleting itself are assets/retention.py's: a scheduled execution applies its
pipeline's `retention:` from inside its run with them, so they live below this layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import DagsterInstance

from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord
from resources.storage import ObjectStore

from ..assets.retention import Doomed, delete, parse_age, plan_delete, select_for_prune, spare_parents_of_kept
from ..settings import Settings
from .status import refresh_status


@dataclass
class PrunePlan:
    """What a prune deletes (children first), and the executions it keeps because a kept child reads them."""

    doomed: list[Doomed]
    spared: list[ExecutionRecord]


def plan_execution_delete(
    db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, executions: tuple[str, ...], with_children: bool
) -> list[Doomed]:
    """The executions named (ids or tags, their statuses freshly read) and, with `with_children`,
    the replays into a route that read them: what deleting each removes. FactflowError for an
    unknown name, a running execution, or a parent whose children would stay."""
    records = [refresh_status(db, instance, db.executions.resolve(name)) for name in executions]
    return plan_delete(db, store, instance, records, with_children)


def plan_prune(
    db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance,
    pipeline: str | None, keep: int | None, older_than: str | None, statuses: tuple[str, ...],
) -> PrunePlan:
    """Every execution that matches but the newest `keep` (and only those older than `older_than`:
    30d, 12h), never a running one, nor a parent a kept child reads; every half-deleted one too."""
    chosen = select_for_prune(db, pipeline, keep, parse_age(older_than) if older_than else None, statuses)
    chosen, spared = spare_parents_of_kept(db, chosen)
    doomed = plan_delete(db, store, instance, chosen, with_children=True) if chosen else []
    return PrunePlan(doomed, spared)


def delete_executions(settings: Settings, db: FactflowDatabase, store: ObjectStore, instance: DagsterInstance, doomed: list[Doomed]) -> list[str]:
    """Delete each planned execution everywhere it lives, in the order planned; the ids deleted."""
    for item in doomed:
        delete(settings, db, store, instance, item)
    return [item.record.id for item in doomed]
