"""Writing what a stage's adapter emitted: each message an object with its sidecar, under a key
derived from its parent and its identity (architecture §2.5, §3), all at once or, for outputs made
one by one, a chunk at a time, handed on as they are written."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from resources.storage import CORE_SIDECAR_FIELDS, ObjectStore, message_key

from ..adapters import Emit, Message
from ..ids import derived_message_id, slug_of
from .inputs import InputHeader, InputItem
from .lineage_rows import shown
from .stage_state import StageControl, StageJob, StoppedMidway

#: Outputs made one by one are stored and handed on this many at a time, the first chunk fewer:
#: the next stage starts on a sitemap's first URLs without waiting for 256 to be written (~0.5 s
#: on a 2-core machine while the run starts).
EMIT_CHUNK = 256
FIRST_EMIT_CHUNK = 16


class OutputWrites:
    """One stage's writes. `storage` runs an object call waiting out storage faults; `kept` (the
    runner's set of keys this run wrote or found done) gets every key written; `hand_on` gives
    stored messages to the stages fed in the same run."""

    def __init__(
        self, job: StageJob, store: ObjectStore, storage: Callable[..., Awaitable[Any]], control: StageControl, kept: set[str],
        hand_on: Callable[[list[InputItem]], Awaitable[None]],
    ):
        self.job, self.store, self.storage, self.control, self.kept, self.hand_on = job, store, storage, control, kept, hand_on

    async def all(
        self, message: Message, header: InputHeader, emits: list[Emit], row_id: str, extras: dict, seen: set[str] | None = None
    ) -> list[tuple[dict, bytes]]:
        """Write every emitted message and its sidecar (but those whose key is in `seen`, which
        gets the new ones); return each sidecar with the bytes written."""
        seen = set() if seen is None else seen
        job, stage = self.job, self.job.stage
        stage_path = f"{stage.route.name}/{stage.name}"
        parent_slug = slug_of(message.id)
        writes: dict[str, tuple[bytes, str, dict]] = {}
        for emit in emits:
            body, content_type = emit.encoded()
            identity = emit.identity if emit.identity is not None else message.id
            message_id = derived_message_id(stage_path, identity, emit.slug if emit.slug is not None else parent_slug)
            key = message_key(job.execution_id, stage.route.name, stage.name, message_id)
            if key in writes or key in seen:
                continue
            seen.add(key)
            own = shown({k: v for k, v in emit.metadata.items() if v is not None and k not in CORE_SIDECAR_FIELDS})
            writes[key] = (
                body,
                content_type,
                {
                    **extras,
                    **own,
                    "execution_id": job.execution_id,
                    "route": stage.route.name,
                    "stage": stage.name,
                    "adapter_type": stage.adapter_type,
                    "message_id": message_id,
                    "parent_message_id": header.message_id,
                    "lineage_id": row_id,
                    "config_hash": job.config_hash,
                    "dagster_run_id": job.run_id,
                },
            )
        return list(await asyncio.gather(*(self._put(key, *value) for key, value in writes.items())))

    async def as_made(self, message: Message, header: InputHeader, emits: Iterable[Emit], row_id: str, extras: dict) -> list[tuple[dict, None]]:
        """Outputs an adapter makes one by one (url_expander's, one per URL of a sitemap): stored and
        handed on a chunk at a time, so the next stage starts on the first while the rest are
        written, and memory holds a chunk, not a sitemap's worth. Returns each one's sidecar (its
        key, hash and size: what the lineage row needs) without its body."""
        made: list[tuple[dict, None]] = []
        seen: set[str] = set()  # an output made twice is stored and handed on once
        iterator = iter(emits)
        while chunk := list(itertools.islice(iterator, EMIT_CHUNK if made else FIRST_EMIT_CHUNK)):
            if self.control.stop.is_set():  # a sitemap's worth is not written out after a stop
                raise StoppedMidway(f"the run was stopped after {len(made)} of its outputs were made; a resume makes them again")
            stored = await self.all(message, header, chunk, row_id, extras, seen)
            self.kept.update(sidecar["key"] for sidecar, _body in stored)
            await self.hand_on([InputItem(sidecar["key"], InputHeader.of_sidecar(sidecar["key"], sidecar), body) for sidecar, body in stored])
            made += [({"key": sidecar["key"], "sha256": sidecar["sha256"], "size": sidecar["size"]}, None) for sidecar, _body in stored]
        return made

    async def _put(self, key: str, body: bytes, content_type: str, metadata: dict) -> tuple[dict, bytes]:
        return await self.storage(self.store.put, key, body, content_type, metadata), body
