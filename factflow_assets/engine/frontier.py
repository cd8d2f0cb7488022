"""The input of a stage that follows links: a frontier kept in the factflow database.

A link-following stage (`link_crawler`) feeds its own input. Its ordinary input (the init
message, or what a sitemap stage stored) only seeds the frontier; the messages it processes are
the frontier's URLs, in the order they were queued (breadth first), each page's links queued by
the runner before the page's lineage row is finished. So a kill at any moment loses nothing: a
resumed run reads the frontier again from the start, the pages already fetched are found done by
the skip rule (without a request), and the ones that were not are fetched.

Each URL is a message of its own: its id derives from its normalised URL, its body says the URL,
its depth and its scope (what the seed allows it to lead to), and its lineage parent is the
invocation that found it, so `lineage chain` shows how a page was reached. The input is done when
no queued URL is left and no page in flight can queue another. Only one batch of queued URLs is
held in memory, whatever the size of the crawl.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, cast

from resources.database import FactflowDatabase
from resources.frontier_store import FrontierEntry, FrontierRow
from resources.hashing import content_hash

from ..adapters import Message
from ..config import Stage
from ..ids import derived_message_id, url_slug
from ..urls import page_key
from .inputs import InputHeader, InputItem, StageInput

#: Queued URLs read from the database at a time.
BATCH = 200

Blocking = Callable[..., Awaitable[Any]]


class LinkFollowing(Protocol):
    """The class methods of an adapter that follows links (`follows_links`: link_crawler)."""

    def seed_urls(self, config: Any, payload: Mapping[str, Any]) -> list[str]: ...

    def scope_of(self, config: Any, seed: str) -> str: ...


async def _unbound(fn: Callable, *args: Any) -> Any:
    raise RuntimeError("a frontier is read only once bound to the stage's database calls (bind)")


class FrontierInput(StageInput):
    def __init__(self, seeds: StageInput, db: FactflowDatabase, execution_id: str, stage: Stage):
        super().__init__(seeds.reader)
        self.seeds = seeds
        self.db = db
        self.where = (execution_id, stage.route.name, stage.name)
        self.stage = stage
        # a stage reads a frontier only when its adapter follows links: it has these
        self.adapter_class = cast(LinkFollowing, stage.adapter_class)
        self.config: Any = stage.adapter_config  # the link follower's: its max_pages
        self._blocking: Blocking = _unbound
        self._buffer: deque[InputItem] = deque()
        self._cursor = 0  # the seq of the last queued URL read
        self._in_flight = 0
        self._queued = 0  # URLs the frontier holds
        self._seeded = False
        self._exhausted = False
        self._lock = asyncio.Lock()  # one reader of the database at a time: no URL read twice
        self._adding = asyncio.Lock()  # one writer: rows are committed in seq order
        self._changed = asyncio.Event()

    def bind(self, blocking: Blocking) -> None:
        self._blocking = blocking

    def prepare(self) -> None:
        self.seeds.prepare()
        self._queued = self.db.frontier.count(*self.where)

    @property
    def known(self) -> int:
        return self._queued

    @property
    def complete(self) -> bool:
        return self._exhausted and self.seeds.complete

    async def next(self) -> InputItem | None:
        while True:
            async with self._lock:
                if self._buffer:
                    self._in_flight += 1
                    return self._buffer.popleft()
                if not self._seeded:
                    seed = await self.seeds.next()
                    if seed is None:
                        self._seeded = True
                    else:
                        await self._seed(seed)
                    continue
                rows = await self._blocking(self.db.frontier.queued_after, *self.where, self._cursor, BATCH)
                if rows:
                    self._cursor = rows[-1].seq
                    self._buffer.extend(self._item(row) for row in rows)
                    continue
                if self._in_flight == 0:
                    self._exhausted = True
                    self._changed.set()  # the other workers find out too
                    return None
                self._changed.clear()
            await self._changed.wait()

    def finished(self, item: InputItem) -> None:
        self._in_flight -= 1
        self._changed.set()

    async def discovered(self, message: Message, lineage_id: str) -> None:
        """Queue the links the adapter kept on `message` (a frontier URL's), found by `lineage_id`."""
        if not message.discovered:
            return
        item = message.json()
        entries = [
            FrontierEntry(page_key(url), url, item["depth"] + 1, item["scope"], lineage_id)
            for url in message.discovered
        ]
        await self._add(entries)

    async def _seed(self, seed: InputItem) -> None:
        """Queue the URLs of one message of the stage's ordinary input (depth 0)."""
        header = seed.header or await self._blocking(self.reader.describe, seed.ref)
        body = seed.body if seed.body is not None else await self._blocking(self.reader.body, seed.ref)
        payload = json.loads(body)
        entries = [
            FrontierEntry(page_key(url), url, 0, self.adapter_class.scope_of(self.config, url), header.parent_lineage_id)
            for url in self.adapter_class.seed_urls(self.config, payload)
        ]
        await self._add(entries)

    async def _add(self, entries: list[FrontierEntry]) -> None:
        async with self._adding:
            room = self.config.max_pages - self._queued  # this run is the stage's only writer
            added = await self._blocking(self.db.frontier.add, *self.where, entries, room) if room > 0 else 0
            self._queued += added
        if added:
            self._changed.set()

    def _item(self, row: FrontierRow) -> InputItem:
        body = json.dumps({"url": row.url, "depth": row.depth, "scope": row.scope}, sort_keys=True).encode()
        stage_path = f"{self.stage.route.name}/{self.stage.name}/frontier"
        message_id = derived_message_id(stage_path, page_key(row.url), url_slug(row.url))
        header = InputHeader(message_id, content_hash(body), "application/json", row.parent_lineage_id, {"url": row.url})
        return InputItem(message_id, header, body)
