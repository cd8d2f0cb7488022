"""What an execution's markdown kept of its pages' main regions, summed from the lineage rows.

`html_to_markdown` writes on each page's row what the region held and what the markdown kept
(`structure`) and what it lost (`structure_lost`). The stage's `structure_kept` check and
`execution get` read the totals here, from the current completed rows only, so a replay's rows
replace the ones it superseded.
"""

from __future__ import annotations

from typing import Any

from resources.database import FactflowDatabase

from ..extraction.structure_counts import KINDS, parse_structure


def structure_totals(db: FactflowDatabase, execution_id: str, route: str, stage: str) -> dict[str, Any]:
    """{"pages": pages converted from a marked region, "kinds": {kind: (held, kept)},
    "pages_with_losses": [{message_id, url, lost}] in message order}."""
    held = dict.fromkeys(KINDS, 0)
    kept = dict.fromkeys(KINDS, 0)
    pages = 0
    lost: list[dict[str, Any]] = []
    for row in db.lineage_queries.current_outputs(execution_id, [(route, stage)], frozenset({"completed"})):
        metadata = row["metadata"] or {}
        counts = parse_structure(metadata.get("structure") or "")
        if not counts:
            continue
        pages += 1
        for kind, (region, markdown) in counts.items():
            held[kind] += region
            kept[kind] += markdown
        if metadata.get("structure_lost"):
            lost.append({"message_id": row["message_id"], "url": metadata.get("url"), "lost": metadata["structure_lost"]})
    lost.sort(key=lambda page: page["message_id"])
    return {"pages": pages, "kinds": {kind: (held[kind], kept[kind]) for kind in KINDS}, "pages_with_losses": lost}
