"""The adapter contract: plain async Python that turns one message into zero or more messages.

Adapters know nothing of Dagster, storage or lineage (architecture §2a): the stage runner hands them a
`Message`, they return `Emit`s, and the runner stores, hashes and records. That keeps each adapter
testable alone and the engine swappable.
"""

from __future__ import annotations

import builtins
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import aiohttp
import httpx
from pydantic import BaseModel, ConfigDict

from ..extraction.documents import decode_text
from ..failures import PermanentError as PermanentError  # part of the adapter contract: adapters raise it


class AdapterConfig(BaseModel):
    """Base of every adapter's config model: unknown fields are errors (E301), not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Message:
    """An input message: the stored object's bytes plus its sidecar metadata."""

    id: str
    body: bytes
    content_type: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: What the adapter says about this invocation (counts, a reason): small scalars the runner
    #: keeps in the invocation's lineage row, whatever its outcome.
    notes: dict[str, Any] = field(default_factory=dict, compare=False)
    #: In an incremental execution: the sidecar of what the baseline execution stored for this
    #: message at this stage (its ETag, Last-Modified, sha256), for an adapter that asks its source
    #: whether anything changed. None otherwise.
    baseline: Mapping[str, Any] | None = field(default=None, compare=False)
    #: Links an adapter that follows links (`link_crawler`) found worth crawling: the engine queues
    #: them in the stage's frontier before the invocation's lineage row is finished.
    discovered: list[str] = field(default_factory=list, compare=False)

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        """The body as text in its declared charset (`decode_text`)."""
        return decode_text(self.body, self.content_type)


@dataclass
class Emit:
    """A message an adapter emits.

    `identity` names the emitted item (a URL, say) when one input fans out into many; leave it
    None when an adapter turns one message into one, and the id derives from the parent's.
    `slug` is a readable prefix for the id; `metadata` holds extras for the sidecar and lineage
    (url, title, HTTP status, ...); of the parent's extras only `url` is carried over.
    """

    body: bytes | str | dict | list
    content_type: str | None = None
    identity: str | None = None
    slug: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        """The body as bytes and its content type."""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        data = json.dumps(self.body, ensure_ascii=False, sort_keys=True).encode()
        return data, self.content_type or "application/json"


def http_url_problem(value: Any) -> str | None:
    """Why `value` cannot be fetched as an absolute http(s) URL; None when it can."""
    if not isinstance(value, str) or not value.strip():
        return "is empty" if not value else "is not text"
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError) as error:
        return f"is not a URL ({error})"
    if url.scheme not in ("http", "https"):
        return f"is a {url.scheme or 'scheme-less'} URL; only http and https are fetched"
    if not url.host:
        return "has no host"
    if url.port is not None and not 0 < url.port < 65536:
        return f"has port {url.port}, outside 1-65535"
    return None


def regex_list(patterns: list[str]) -> list[str]:
    """A config's list of regular expressions, each checked to compile (a pydantic field
    validator: `field_validator("include", "exclude")(regex_list)`)."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
    return patterns


class Unchanged(Exception):
    """The source says this message's output is what the baseline execution stored (an HTTP 304):
    the runner carries the baseline's outputs over instead of storing new ones."""


class SkipMessage(Exception):
    """The adapter decided not to process this message (robots.txt, not HTML, ...).

    Recorded as a `skipped` lineage row with the reason; it is not a failure.
    """


class UrlPolicy(Protocol):
    """Where an execution may fetch from (`network_policy.NetworkPolicy`)."""

    async def check(self, url: httpx.URL | str) -> None:
        """Return if `url` may be fetched; raise a PermanentError saying why not."""


@dataclass
class AdapterContext:
    """What the engine lends an adapter for one stage run."""

    http: aiohttp.ClientSession
    execution_id: str
    route: str
    stage: str
    #: Where the execution may fetch from (`http` checks every request it sends against it); an
    #: adapter that makes URLs for later stages checks them here, before they are stored.
    network: UrlPolicy | None = None


ConfigT = TypeVar("ConfigT", bound=AdapterConfig)


class HostNeedMissing(Exception):
    """What an adapter needs on the machine is not there; the message says how to get it."""


@dataclass(frozen=True)
class HostNeed:
    """Something an adapter needs on the machine besides Python packages (a browser), which
    `system health` checks for the pipelines that use the adapter. Needs with the same `what` and
    `key` are one check."""

    what: str  # the probe's name: "browser"
    key: str  # which one: the executable asked for
    find: Callable[[], str]  # its description when it is there; raises HostNeedMissing


class Adapter(ABC, Generic[ConfigT]):
    """One step of a route. Subclasses set `type`, `config_model` and implement `process`."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[AdapterConfig]]  # builtins: `type` is the class attribute above
    #: Init-payload fields the adapter reads when it is a route's first stage (for W503).
    reads_init_fields: ClassVar[tuple[str, ...]] = ()
    #: Modules an adapter that works in worker processes has them import before their first
    #: message; a run starts the process that imports them as early as it knows its stages.
    worker_modules: ClassVar[tuple[str, ...]] = ()
    #: Whether the adapter reads a source outside factflow (a website): in an incremental execution
    #: it runs even on an input the baseline had, since the source may have changed (it gets the
    #: baseline's output sidecar as `message.baseline`); other adapters' unchanged inputs are
    #: carried over without running them.
    asks_source: ClassVar[bool] = False
    #: Whether its outputs are the site's pages, by URL (what `execution diff` compares).
    fetches_pages: ClassVar[bool] = False
    #: Whether it follows links: its input then only seeds a frontier the engine keeps
    #: (engine/frontier.py), and what it puts in `Message.discovered` is queued there.
    follows_links: ClassVar[bool] = False

    def __init__(self, config: ConfigT, context: AdapterContext):
        self.config = config
        self.context = context

    @classmethod
    def host_needs(cls, config: AdapterConfig) -> list[HostNeed]:
        """What the adapter, so configured, needs on the machine (`system health` asks)."""
        return []

    async def open(self) -> None:
        """Set up per-stage state (caches, pools). Called once before the first message."""

    async def close(self) -> None:
        """Release what `open` took. Called once after the last message."""

    @classmethod
    def init_payload_problems(cls, config: AdapterConfig, payload: Mapping[str, Any]) -> list[str]:
        """What stops `payload` from being this adapter's input when it starts a pipeline (the init
        message): checked before an execution is recorded, so a bad `--set` creates nothing."""
        return []

    @abstractmethod
    async def process(self, message: Message) -> list[Emit] | Iterator[Emit]:
        """Turn one message into the messages it yields. Raise to fail it. An iterator (many
        outputs made one by one, a sitemap's URLs) has them stored and handed on as they are made."""
