"""The asset checks every stage reports with its materialisation, shown in the Dagster UI.

- `no_failed_messages` (warning): no current lineage row of the stage failed. A route that goes on
  past failures still materialises; this is where the UI shows that some messages did not make it.
- `outputs_for_every_input` (error): every input message has a finished row, and every object a
  completed row names is complete in storage. It fails when inputs were left untouched or an
  output went missing, which a later stage or a replay would otherwise discover the hard way.
- `structure_kept` (warning, html_to_markdown stages only): no page's markdown has fewer code
  blocks, tables, headings, list items or links than the main region it came from; names the
  pages that lost some, so a loss is seen instead of passing in silence.
All read the current rows (a retry or replay supersedes the old ones), not just this run's.

The checks are partitioned like the stage, so the UI shows them per execution (an unpartitioned
check would show whichever execution ran last). Dagster 1.13 calls partitioned checks a preview
and warns on every definition load; the warning is silenced here, where the choice is made.
"""

from __future__ import annotations

import warnings

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    PartitionsDefinition,
    PreviewWarning,
)

from resources.database import FactflowDatabase
from resources.statuses import DONE_STATUSES
from resources.storage import ObjectStore, stage_prefix

from ..engine.structure_totals import structure_totals

NO_FAILED_MESSAGES = "no_failed_messages"
OUTPUTS_FOR_EVERY_INPUT = "outputs_for_every_input"
STRUCTURE_KEPT = "structure_kept"
#: The adapter whose pages the structure check reads.
STRUCTURE_ADAPTER = "html_to_markdown"
SAMPLES = 5


def stage_check_specs(key: AssetKey, partitions: PartitionsDefinition, adapter_type: str) -> list[AssetCheckSpec]:
    """The checks of one stage asset, partitioned like it: one result per execution."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return _specs(key, partitions, adapter_type)


def _specs(key: AssetKey, partitions: PartitionsDefinition, adapter_type: str) -> list[AssetCheckSpec]:
    structure = [
        AssetCheckSpec(
            STRUCTURE_KEPT,
            asset=key,
            partitions_def=partitions,
            description="No page's markdown lost code blocks, tables, headings, list items or links its main region held.",
        )
    ]
    return (structure if adapter_type == STRUCTURE_ADAPTER else []) + [
        AssetCheckSpec(
            NO_FAILED_MESSAGES,
            asset=key,
            partitions_def=partitions,
            description="No input message of this stage ended in a failed lineage row.",
        ),
        AssetCheckSpec(
            OUTPUTS_FOR_EVERY_INPUT,
            asset=key,
            partitions_def=partitions,
            description="Every input message was processed, and every object its completed rows name is in storage.",
        ),
    ]


def stage_check_results(
    db: FactflowDatabase, store: ObjectStore, execution_id: str, route: str, stage: str, inputs: int, key: AssetKey, adapter_type: str
) -> list[AssetCheckResult]:
    current = db.lineage.prior_invocations(execution_id, route, stage)
    failed = sorted(message_id for message_id, row in current.items() if row.status == "failed")
    finished = sum(1 for row in current.values() if row.status in DONE_STATUSES or row.status == "failed")
    stored = set(store.keys(stage_prefix(execution_id, route, stage)))
    missing = sorted(key for row in current.values() if row.status == "completed" for key in row.output_keys if key not in stored)
    unprocessed = max(inputs - finished, 0)
    structure = [_structure_result(db, execution_id, route, stage, key)] if adapter_type == STRUCTURE_ADAPTER else []
    return structure + [
        AssetCheckResult(
            asset_key=key,
            check_name=NO_FAILED_MESSAGES,
            passed=not failed,
            severity=AssetCheckSeverity.WARN,
            metadata={"failed_messages": len(failed), "first_failed": ", ".join(failed[:SAMPLES])},
        ),
        AssetCheckResult(
            asset_key=key,
            check_name=OUTPUTS_FOR_EVERY_INPUT,
            passed=not unprocessed and not missing,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "inputs": inputs,
                "inputs_without_finished_row": unprocessed,
                "missing_objects": len(missing),
                "first_missing": ", ".join(missing[:SAMPLES]),
            },
        ),
    ]


def _structure_result(db: FactflowDatabase, execution_id: str, route: str, stage: str, key: AssetKey) -> AssetCheckResult:
    totals = structure_totals(db, execution_id, route, stage)
    lost = totals["pages_with_losses"]
    return AssetCheckResult(
        asset_key=key,
        check_name=STRUCTURE_KEPT,
        passed=not lost,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "pages_with_losses": len(lost),
            "first_pages_with_losses": "; ".join(f"{page['url'] or page['message_id']}: {page['lost']}" for page in lost[:SAMPLES]),
            **{f"{kind}_in_regions": held for kind, (held, _) in totals["kinds"].items()},
            **{f"{kind}_kept": kept for kind, (_, kept) in totals["kinds"].items()},
        },
    )
