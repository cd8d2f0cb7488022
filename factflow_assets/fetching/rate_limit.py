"""Per-host request pacing that adapts to the server (additive increase, multiplicative decrease).

Each host gets a request rate. Every success raises it by `increase` requests/s up to `max_rps`;
a throttling answer (429, 503) or a timeout halves it down to `min_rps`. A robots.txt
Crawl-delay sets a floor on the interval between requests. Requests reserve the next free slot
before sleeping, so concurrent workers on one event loop never bunch up on a host.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class _HostPace:
    rate: float
    next_slot: float = 0.0
    min_interval: float = 0.0


class AimdRateLimiter:
    def __init__(
        self,
        initial_rps: float,
        min_rps: float,
        max_rps: float,
        increase: float,
        decrease: float,
    ):
        self.initial_rps = initial_rps
        self.min_rps = min_rps
        self.max_rps = max_rps
        self.increase = increase
        self.decrease = decrease
        self._hosts: dict[str, _HostPace] = {}

    def _pace(self, host: str) -> _HostPace:
        pace = self._hosts.get(host)
        if pace is None:
            pace = self._hosts[host] = _HostPace(rate=self.initial_rps)
        return pace

    def rate(self, host: str) -> float:
        return self._pace(host).rate

    def set_min_interval(self, host: str, seconds: float) -> None:
        """A floor between two requests to `host` (robots.txt Crawl-delay)."""
        self._pace(host).min_interval = max(0.0, seconds)

    async def acquire(self, host: str) -> None:
        """Wait for this host's next free slot."""
        pace = self._pace(host)
        now = time.monotonic()
        slot = max(now, pace.next_slot)
        pace.next_slot = slot + max(1.0 / pace.rate, pace.min_interval)
        if slot > now:
            await asyncio.sleep(slot - now)

    def on_success(self, host: str) -> None:
        pace = self._pace(host)
        pace.rate = min(self.max_rps, pace.rate + self.increase)

    def on_throttle(self, host: str) -> None:
        pace = self._pace(host)
        pace.rate = max(self.min_rps, pace.rate * self.decrease)
