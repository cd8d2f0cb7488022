"""The HTTP client adapters fetch with: one pooled `aiohttp.ClientSession` per stage run.

aiohttp, not httpx, because a stage's event loop spends its CPU on every page: on the same 100 KB
pages, 16 at a time, httpx took 1.05 ms of CPU a page and aiohttp 0.37 (benchmarks: issue 33 in
docs/decisions.md). httpx stays for the one-off requests (webhooks, the UI's probe), where that
cost does not add up.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import aiohttp
import httpx
from yarl import URL

DEFAULT_USER_AGENT = "factflow/0.1 (+https://github.com/factflow/factflow)"
#: A header line may be this long. aiohttp's default (8 KB) refuses pages whose servers send long
#: Set-Cookie, Link or Content-Security-Policy headers, which browsers and httpx read.
MAX_HEADER_BYTES = 64 * 1024

#: Called with each request's URL before it is sent (redirects and robots.txt included); it raises
#: to refuse the request (the execution's network policy).
RequestCheck = Callable[[str], Awaitable[None]]


def proxy_for(url: URL) -> str | None:
    """The proxy HTTP_PROXY / HTTPS_PROXY / ALL_PROXY name for `url`, unless NO_PROXY exempts its
    host: the variables curl and httpx read, read on each request (~35 µs, a tenth of the
    client's CPU a page; a proxy set while a run goes is used by its next request)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy is None or urllib.request.proxy_bypass(url.host or ""):
        return None
    return proxy


def new_http_client(
    user_agent: str = DEFAULT_USER_AGENT,
    max_connections: int = 64,
    verify_tls: bool = True,
    request_check: RequestCheck | None = None,
) -> aiohttp.ClientSession:
    """A new client; the caller closes it (`async with`), and makes it inside the event loop that
    uses it. It follows no redirect itself and decodes no body: the fetch does both (capped)."""
    trace_configs = []
    if request_check is not None:
        check = request_check  # known not None inside the closure below

        async def before_request(_session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
            await check(str(params.url))

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(before_request)
        trace_configs.append(trace)
    return aiohttp.ClientSession(
        headers={"User-Agent": user_agent},
        # httpx's TLS context: certifi's authorities, or SSL_CERT_FILE / SSL_CERT_DIR when set
        connector=aiohttp.TCPConnector(limit=max_connections, ssl=httpx.create_ssl_context() if verify_tls else False),
        auto_decompress=False,
        # Not trust_env: aiohttp would then read ~/.netrc and the proxy variables in a thread for
        # every request (two hand-offs a page); fetches ask `proxy_for` instead, in the loop.
        trust_env=False,
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # keep cookies of hosts named by address too, as httpx did
        max_line_size=MAX_HEADER_BYTES,
        max_field_size=MAX_HEADER_BYTES,
        trace_configs=trace_configs,
    )
