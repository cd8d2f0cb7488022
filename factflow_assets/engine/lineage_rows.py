"""The shape of what a stage records: its lineage rows (pending, failed) and the metadata kept in
them and in sidecars (architecture §3, §4). Nothing here does I/O."""

from __future__ import annotations

import hashlib
import traceback
from typing import Any

from resources.clock import utcnow
from resources.errors import error_text
from resources.masking import mask_text, mask_uri

from .inputs import InputHeader
from .stage_state import StageJob

MAX_ERROR_MESSAGE = 2000
MAX_TRACEBACK = 8000
#: Sidecar extras that follow a message down its route (each adapter sets the rest itself).
INHERITED_FIELDS = ("url",)
#: Metadata fields that hold URLs (masked when they carry a password: `shown`).
URL_FIELDS = frozenset({"url", "final_url", "canonical_url"})


def inherited(header: InputHeader) -> dict:
    """What the input's sidecar passes on to the outputs and the row (its URL), as shown."""
    return shown({k: header.metadata[k] for k in INHERITED_FIELDS if k in header.metadata})


def pending_row(job: StageJob, row_id: str, header: InputHeader, attempt: int, extras: dict) -> dict:
    """The row opened when an invocation starts; `LineageWriter.finish` completes it."""
    stage = job.stage
    return {
        "id": row_id,
        "execution_id": job.execution_id,
        "route": stage.route.name,
        "stage": stage.name,
        "adapter_type": stage.adapter_type,
        "message_id": header.message_id,
        "parent_lineage_id": header.parent_lineage_id,
        "batch_id": job.batch_id,
        "status": "pending",
        "input_hash": header.input_hash,
        "output_hash": None,
        "output_keys": [],
        "output_count": None,
        "output_bytes": None,
        "error_class": None,
        "error_message": None,
        "error_traceback": None,
        "started_at": utcnow(),
        "finished_at": None,
        "duration_ms": None,
        "dagster_run_id": job.run_id,
        "attempt": attempt,
        "config_hash": job.config_hash,
        "superseded": False,
        "metadata": scalars(extras),
    }


def failed_fields(error: BaseException) -> dict[str, Any]:
    """A failed row's fields. A failed page's message and traceback are read by anyone with the
    database: secrets masked. Call it where the error is being handled (it reads the traceback)."""
    return {
        "status": "failed",
        "error_class": type(error).__name__,
        "error_message": mask_text(error_text(error))[:MAX_ERROR_MESSAGE],
        "error_traceback": mask_text(traceback.format_exc())[-MAX_TRACEBACK:],
    }


def outputs_fields(sidecars: list[dict]) -> dict[str, Any]:
    """What a row says of the outputs it wrote (or carried): keys, one hash over them, count, bytes."""
    return {
        "output_keys": [sidecar["key"] for sidecar in sidecars],
        "output_hash": combined_hash([sidecar["sha256"] for sidecar in sidecars]),
        "output_count": len(sidecars),
        "output_bytes": sum(sidecar["size"] for sidecar in sidecars),
    }


def combined_hash(hashes: list[str]) -> str | None:
    if not hashes:
        return None
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def shown(metadata: dict) -> dict:
    """Sidecar and lineage metadata as anyone reading storage or the database may see it: a
    password in a URL (`https://user:pw@host/`) masked. The message bodies keep the URL whole,
    for the fetch."""
    return {k: mask_uri(v) if k in URL_FIELDS and isinstance(v, str) and "@" in v else v for k, v in metadata.items()}


def scalars(values: dict) -> dict:
    """The small, flat part of some metadata: what a lineage row keeps."""
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool)) and not (isinstance(v, str) and len(v) > 500)}
