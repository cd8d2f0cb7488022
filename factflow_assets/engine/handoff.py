"""The bounded hand-off between two stages that run together (architecture §2.3).

A stage puts each message it has stored; the stage after it takes them while the first is still
working. The hand-off holds at most `capacity` messages: a stage that runs ahead waits at `put`
until the one after it has taken something, so a slow stage holds back a fast one instead of
memory filling up with pages. Everything runs on one event loop, so no lock is needed: nothing
awaits between a check and the change it guards.

A stop (a cancel) must not leave a stage waiting forever on a stage that no longer takes
anything: once `stop` is set, `put` gives up and returns False. The message is stored already;
the resume finds it there.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: How often a full hand-off looks whether a stop was requested (from another thread).
STOP_POLL = 0.2


class Handoff(Generic[T]):
    def __init__(self, capacity: int, stop: threading.Event):
        if capacity < 1:
            raise ValueError("a hand-off holds at least one message")
        self.capacity = capacity
        self._stop = stop
        self._items: deque[T] = deque()
        self._closed = False
        self._ready = asyncio.Event()  # something to take, or closed
        self._space = asyncio.Event()  # room to put
        self._space.set()
        self.received = 0  # messages put so far (for progress: received - taken are waiting)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    async def put(self, item: T) -> bool:
        """Hand `item` on, waiting while the hand-off is full; False if a stop came first."""
        if self._closed:
            raise RuntimeError("put on a closed hand-off")
        while len(self._items) >= self.capacity:
            if self._stop.is_set():
                return False
            self._space.clear()
            try:
                await asyncio.wait_for(self._space.wait(), STOP_POLL)
            except TimeoutError:
                pass
        self._items.append(item)
        self.received += 1
        self._ready.set()
        return True

    async def get(self) -> T | None:
        """The next message, waiting for one; None once the hand-off is closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        self._space.set()
        return item

    def close(self) -> None:
        """No more messages will come (the stage before has finished, or stopped)."""
        self._closed = True
        self._ready.set()
