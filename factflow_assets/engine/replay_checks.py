"""What a replay or a resume checks before anything changes: every object it would read is in storage.

Storage is the system of record (architecture §3): a replay or a resume whose input went missing fails
loudly, naming the prefix and the first missing keys, and changes nothing. Used by the CLI before
it launches a replay or a resume, and by the asset for every one, whoever launched it.
"""

from __future__ import annotations

from resources.database import FactflowDatabase
from resources.errors import FactflowError
from resources.storage import ObjectStore, stage_prefix

MISSING_SHOWN = 3


def require_stored_outputs(
    db: FactflowDatabase, store: ObjectStore, execution_id: str, route: str, stage: str, role: str, operation: str = "replay"
) -> int:
    """How many objects the stage stored; FactflowError naming the prefix (and the first missing
    keys) when storage holds fewer than its completed lineage rows say it wrote, or, for a replay,
    none at all."""
    prefix = stage_prefix(execution_id, route, stage)
    stored = {o.key for o in store.objects(prefix)}  # complete objects: an orphaned sidecar is not an input
    expected = {
        key
        for prior in db.lineage.prior_invocations(execution_id, route, stage).values()
        if prior.status == "completed"
        for key in prior.output_keys
    }
    if not stored and (operation == "replay" or expected):
        raise FactflowError(f"cannot {operation}: {role} is missing: nothing is stored under {prefix}; nothing was changed")
    missing = sorted(expected - stored)
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN]) + (" …" if len(missing) > MISSING_SHOWN else "")
        raise FactflowError(
            f"cannot {operation}: {role} is incomplete: {len(missing)} of {len(expected)} object(s) are missing under {prefix} "
            f"({shown}); storage is the system of record, so nothing was changed"
        )
    return len(stored)


def require_resume_inputs(db: FactflowDatabase, store: ObjectStore, execution_id: str, stages) -> None:
    """Every stage a resume runs whose upstream does not run with it reads what that upstream
    stored: all of it must be there (a stage that read half its input would finish "complete")."""
    selected = {stage.ref for stage in stages}
    for stage in stages:
        if stage.upstream is not None and stage.upstream not in selected:
            upstream = stage.upstream
            require_stored_outputs(db, store, execution_id, upstream.route, upstream.stage, f"what {upstream} stored", "resume")
