"""The HTTP client adapters fetch with: one pooled `httpx.AsyncClient` per stage run."""

from __future__ import annotations

import httpx

DEFAULT_USER_AGENT = "factflow/0.1 (+https://github.com/factflow/factflow)"


def new_http_client(
    user_agent: str = DEFAULT_USER_AGENT,
    max_connections: int = 64,
    verify_tls: bool = True,
    event_hooks: dict[str, list] | None = None,
) -> httpx.AsyncClient:
    """A new client; the caller closes it (`async with`). Redirects are followed by the adapters;
    `event_hooks` see every request (the execution's network policy checks them there)."""
    return httpx.AsyncClient(
        event_hooks=event_hooks,
        headers={"User-Agent": user_agent},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        verify=verify_tls,
        follow_redirects=False,
        trust_env=True,
    )
