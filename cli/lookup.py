"""What an operator types, turned into what it names: an execution, a route or stage of it, a
lineage row. Anything that names nothing is a NotFoundError with the names that do exist."""

from __future__ import annotations

from typing import Any

from resources.errors import NotFoundError

from .environment import Environment


def stage_prefixes(env: Environment, record, route: str | None = None, stage: str | None = None) -> list[str]:
    """The storage prefixes that `--route`/`--stage` select in an execution (checked against its
    frozen config, so a typo is an error rather than an empty listing)."""
    from resources.storage import (  # fsspec: only when storage is used
        execution_prefix,
        stage_prefix,
    )

    if route is None and stage is None:
        return [execution_prefix(record.id)]
    stages = check_scope(env, record, route=route, stage=stage)
    if stage is None:
        return [execution_prefix(record.id, route)]
    return [stage_prefix(record.id, s.route.name, s.name) for s in stages]


def check_scope(env: Environment, record, *, route: str | None = None, stage: str | None = None, adapter: str | None = None) -> list:
    """The stages of the execution's frozen config that `route`, `stage` and `adapter` select."""
    return _pipeline(env, record).stages_matching(f"execution {record.id}", route=route, stage=stage, adapter=adapter)


def _pipeline(env: Environment, record):
    from factflow_assets.engine.executions import frozen_pipeline

    return frozen_pipeline(env.db, record.config_hash, record.pipeline)


def lineage_row(env: Environment, text: str, execution: str | None = None) -> dict[str, Any]:
    """The lineage row named by a lineage id, a message id, a storage key (the row that wrote
    the object) or a page URL (the row that fetched it), optionally within one execution (id or tag)."""
    execution_id = env.db.executions.resolve(execution).id if execution else None
    if "/" in text and not text.startswith(("http://", "https://")):
        lineage_id = env.store.metadata(text).get("lineage_id")
        if not lineage_id:
            raise NotFoundError(f"the sidecar of {text} names no lineage row")
        return env.db.lineage_queries.require(lineage_id)
    return env.db.lineage_queries.resolve(text, execution_id)
