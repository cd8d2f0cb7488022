"""Where a pipeline may fetch from: its seed hosts, the hosts its YAML allows, never the metadata service.

A pipeline is given URLs (the init message's payload: a sitemap, a site root) and fetches what
they lead to. Without a policy, a sitemap or a redirect could send it anywhere the machine can
reach: another site, an intranet host, or the cloud metadata service that hands out credentials
(169.254.169.254). So every request the stage's HTTP client sends, redirects and robots.txt
included, is checked first:

- its host must be a seed host (the host of a URL in the init payload), or match `allow_hosts`
  in the pipeline's `network:` block (`docs.example.com`, `*.example.com` for subdomains, `*`
  for any host);
- its address must not be link-local (169.254.0.0/16, fe80::/10) or a known metadata address,
  whatever the host is called, unless `allow_link_local: true`. A host name is resolved to check
  this; a name whose answer changes between the check and the connection (DNS rebinding) is not
  covered here: an egress proxy or firewall is the place for that.

A refused request raises `RequestRefused`, a `PermanentError`: the message fails at once, with the
reason in its lineage row, and is not retried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..failures import PermanentError
from ..urls import normal_host

#: Addresses of cloud metadata services outside 169.254.0.0/16 (AWS IPv6, Alibaba, Oracle's IPv6).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "fd00:c1::a9fe:a9fe")
)
#: Names that reach a metadata service without being an address.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"})

Resolver = Callable[[str], Awaitable[list[str]]]


class RequestRefused(PermanentError):
    """The network policy refused a request before it was sent."""


async def resolve(host: str) -> list[str]:
    """Every address `host` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def seed_hosts(payload: Any) -> frozenset[str]:
    """Hosts of every http(s) URL anywhere in an init payload."""
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            parts = urlsplit(value.strip())
            if parts.scheme in ("http", "https") and parts.hostname:
                found.add(normal_host(parts.hostname))
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(payload)
    return frozenset(found)


def _normal_pattern(pattern: str) -> str:
    """An allow_hosts entry in the hosts' normal form (`*.Bücher.example` is `*.xn--bcher-kva.example`)."""
    return "*." + normal_host(pattern[2:]) if pattern.startswith("*.") else pattern if pattern == "*" else normal_host(pattern)


def _forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local or address in METADATA_ADDRESSES


@dataclass(frozen=True)
class NetworkPolicy:
    seed_hosts: frozenset[str]
    allow_hosts: tuple[str, ...] = ()
    allow_link_local: bool = False
    resolver: Resolver = resolve
    #: Verdict per host name for this policy's life (one stage run): one lookup per host, not per page.
    _refusals: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_execution(cls, network: Any, init_payload: Mapping[str, Any]) -> NetworkPolicy:
        """The policy of one execution: `network` is the pipeline's `network:` block."""
        return cls(seed_hosts(init_payload), tuple(_normal_pattern(h) for h in network.allow_hosts), network.allow_link_local)

    def host_allowed(self, host: str) -> bool:
        host = normal_host(host)
        if host in self.seed_hosts:
            return True
        for pattern in self.allow_hosts:
            if pattern == "*" or pattern == host:
                return True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True
        return False

    async def check(self, url: httpx.URL | str) -> None:
        """Return if `url` may be fetched; raise RequestRefused saying why not. The stage's HTTP
        client calls it before every request it sends (`resources/http.py`: `request_check`)."""
        url = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = normal_host(url.host or "")
        if not self.host_allowed(host):
            seeds = ", ".join(sorted(self.seed_hosts)) or "none"
            raise RequestRefused(
                f"network policy: {host or url} is not a host of this pipeline (seed hosts: {seeds}); "
                "widen it with network.allow_hosts in the pipeline YAML"
            )
        if self.allow_link_local:
            return
        if host not in self._refusals:
            self._refusals[host] = await self._refusal(host)
        if self._refusals[host] is not None:
            raise RequestRefused(self._refusals[host])

    async def _refusal(self, host: str) -> str | None:
        if host in METADATA_NAMES:
            return f"network policy: {host} is a cloud metadata service; set network.allow_link_local to reach it"
        for address in await self._addresses(host):
            if _forbidden_address(address):
                return f"network policy: {host} is at {address}, a link-local or metadata address; set network.allow_link_local to reach it"
        return None

    async def _addresses(self, host: str) -> Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            return [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolver(host)]
        except (OSError, UnicodeError):
            return []  # unresolvable: the request itself fails with the resolver's error
