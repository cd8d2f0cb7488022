"""Where a stage's input messages come from: the init message, or what a stage stored.

Reading is split in two so that a re-run can decide to skip a message from its sidecar alone
(`describe`), without reading the body.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from resources.storage import ObjectStore

from ..ids import content_hash, init_message_id


@dataclass(frozen=True)
class InputHeader:
    message_id: str
    input_hash: str | None
    content_type: str
    parent_lineage_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


class InputSource(ABC):
    @abstractmethod
    def refs(self) -> list[str]:
        """One reference per input message (blocking I/O: call off the event loop)."""

    @abstractmethod
    def describe(self, ref: str) -> InputHeader: ...

    @abstractmethod
    def body(self, ref: str) -> bytes: ...


class InitInput(InputSource):
    """The execution's init message: its payload as JSON."""

    def __init__(self, route: str, payload: dict[str, Any]):
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        self._body = text.encode()
        self._header = InputHeader(
            message_id=init_message_id(route, text),
            input_hash=content_hash(self._body),
            content_type="application/json",
            parent_lineage_id=None,
        )

    def refs(self) -> list[str]:
        return [self._header.message_id]

    def describe(self, ref: str) -> InputHeader:
        return self._header

    def body(self, ref: str) -> bytes:
        return self._body


class StoredInput(InputSource):
    """Every complete object under one stage prefix."""

    def __init__(self, store: ObjectStore, prefix: str):
        self.store = store
        self.prefix = prefix

    def refs(self) -> list[str]:
        return self.store.keys(self.prefix)

    def describe(self, ref: str) -> InputHeader:
        meta = self.store.metadata(ref)
        return InputHeader(
            message_id=meta.get("message_id") or ref.rsplit("/", 1)[-1],
            input_hash=meta.get("sha256"),
            content_type=meta.get("content_type", "application/octet-stream"),
            parent_lineage_id=meta.get("lineage_id"),
            metadata=meta,
        )

    def body(self, ref: str) -> bytes:
        return self.store.get(ref)
