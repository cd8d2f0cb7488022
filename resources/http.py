"""The HTTP client adapters fetch with: one pooled `httpx.AsyncClient` per stage run."""

from __future__ import annotations

import httpx
from dagster import ConfigurableResource
from pydantic import Field

DEFAULT_USER_AGENT = "factflow/0.1 (+https://github.com/factflow/factflow)"


class HttpClientResource(ConfigurableResource):
    user_agent: str = Field(DEFAULT_USER_AGENT, description="Sent with every request; robots.txt rules match it.")
    max_connections: int = Field(64, ge=1)
    verify_tls: bool = True

    def client(self) -> httpx.AsyncClient:
        """A new client; the caller closes it (`async with`)."""
        return httpx.AsyncClient(
            headers={"User-Agent": self.user_agent},
            limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
            verify=self.verify_tls,
            follow_redirects=False,
            trust_env=True,
        )
