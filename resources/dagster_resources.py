"""The Dagster resources: typed, configurable handles on the plain stores beside them.

Kept apart from the stores so that the CLI can open storage and the database without importing
Dagster (half a second on every command).
"""

from __future__ import annotations

import aiohttp
from dagster import ConfigurableResource
from pydantic import Field

from .database import FactflowDatabase
from .http import DEFAULT_USER_AGENT, RequestCheck, new_http_client
from .storage import ObjectStore


class StorageResource(ConfigurableResource):
    """Where messages are kept. `uri` is `file:///…` or `s3://bucket/prefix`."""

    uri: str = Field(description="Storage root URI.")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, ...).")

    def open(self) -> ObjectStore:
        return ObjectStore(self.uri, self.endpoint_url)


class FactflowDatabaseResource(ConfigurableResource):
    """Executions, lineage and route state. `url` is a SQLAlchemy URL."""

    url: str = Field(description="SQLAlchemy URL of the factflow database.")

    def open(self) -> FactflowDatabase:
        return FactflowDatabase(self.url)


class HttpClientResource(ConfigurableResource):
    """How adapters reach the web."""

    user_agent: str = Field(default=DEFAULT_USER_AGENT, description="Sent with every request; robots.txt rules match it.")
    max_connections: int = Field(default=64, ge=1)
    verify_tls: bool = True

    def client(self, request_check: RequestCheck | None = None) -> aiohttp.ClientSession:
        return new_http_client(self.user_agent, self.max_connections, self.verify_tls, request_check)
