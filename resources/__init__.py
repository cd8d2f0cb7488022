"""Dagster resources: object storage, the factflow database, the HTTP client."""

from .database import FactflowDatabase, FactflowDatabaseResource
from .http import HttpClientResource
from .storage import ObjectStore, StorageResource

__all__ = [
    "FactflowDatabase",
    "FactflowDatabaseResource",
    "HttpClientResource",
    "ObjectStore",
    "StorageResource",
]
