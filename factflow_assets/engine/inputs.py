"""Where a stage's input messages come from: the init message, what a stage stored, or the stage
before it in the same run, as it stores them.

A running stage takes `InputItem`s from a `StageInput` one at a time. An item handed on by the
stage before it carries its sidecar and body already (nothing to read back); an item listed from
storage carries only its key, and reading is split in two so that a re-run can decide to skip a
message from its sidecar alone (`describe`), without reading the body.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from resources.hashing import content_hash
from resources.storage import ObjectStore

from ..ids import init_message_id
from .handoff import Handoff


@dataclass(frozen=True)
class InputHeader:
    message_id: str
    input_hash: str | None
    content_type: str
    parent_lineage_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_sidecar(cls, ref: str, sidecar: dict[str, Any]) -> InputHeader:
        """The header of a stored message, from its sidecar."""
        return cls(
            message_id=sidecar.get("message_id") or ref.rsplit("/", 1)[-1],
            input_hash=sidecar.get("sha256"),
            content_type=sidecar.get("content_type", "application/octet-stream"),
            parent_lineage_id=sidecar.get("lineage_id"),
            metadata=sidecar,
        )


@dataclass(frozen=True)
class InputItem:
    """One input message as a stage takes it: its reference (a storage key, or the init message's
    id), and its header and body when they are known without reading storage."""

    ref: str
    header: InputHeader | None = None
    body: bytes | None = None


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
        return InputHeader.of_sidecar(ref, self.store.metadata(ref))

    def body(self, ref: str) -> bytes:
        return self.store.get(ref)


class StageInput(ABC):
    """What a running stage takes its messages from, one at a time (architecture §2.3–2.4)."""

    def __init__(self, reader: InputSource):
        self.reader = reader  # reads the header and body of an item that carries only its ref

    def prepare(self) -> None:  # noqa: B027 (a hook: most inputs have nothing to do)
        """Blocking set-up (listing storage): call off the event loop, before the first `next`."""

    def bind(self, blocking) -> None:  # noqa: B027 (a hook: most inputs have nothing to do)
        """How the input runs blocking calls once the stage runs (`blocking(fn, *args)`: the
        runner's I/O threads, waiting out a database outage). Only a frontier makes any."""

    def finished(self, item: InputItem) -> None:  # noqa: B027 (a hook: most inputs have nothing to do)
        """`item` went through (done, failed or skipped): a frontier may now know it is empty."""

    async def discovered(self, message, lineage_id: str) -> None:  # noqa: B027 (a hook: most inputs have nothing to do)
        """Take the links the adapter found on `message` (`Message.discovered`), found by the
        invocation `lineage_id`. Only a frontier follows links; other inputs have none to take."""

    @abstractmethod
    async def next(self) -> InputItem | None:
        """The next message; None when there are no more."""

    @property
    @abstractmethod
    def known(self) -> int:
        """Messages known so far (listed, or handed on): what progress counts as the stage's input."""

    @property
    @abstractmethod
    def complete(self) -> bool:
        """Whether every message this input will ever have is known (false while the stage before
        still runs, and for good if it stopped early)."""


class ListedInput(StageInput):
    """A fixed list: the init message, or what storage holds for the stage before."""

    def __init__(self, source: InputSource):
        super().__init__(source)
        self._refs: list[str] | None = None
        self._position = 0

    def prepare(self) -> None:
        self._refs = self.reader.refs()

    async def next(self) -> InputItem | None:
        if self._refs is None:
            raise RuntimeError("prepare() lists the input first")
        if self._position >= len(self._refs):
            return None
        self._position += 1
        return InputItem(self._refs[self._position - 1])

    @property
    def known(self) -> int:
        return len(self._refs or ())

    @property
    def complete(self) -> bool:
        return True


class HandedOnInput(StageInput):
    """What the stage before, running in the same step, stores: its new outputs with their sidecar
    and body, and the outputs it found done in earlier attempts by key (each message once)."""

    def __init__(self, handoff: Handoff[InputItem], reader: InputSource):
        super().__init__(reader)
        self.handoff = handoff
        self.upstream_complete = False  # set by the stage before when it saw all of its own input

    async def next(self) -> InputItem | None:
        return await self.handoff.get()

    @property
    def known(self) -> int:
        return self.handoff.received

    @property
    def complete(self) -> bool:
        return self.handoff.closed and self.upstream_complete
