"""The settings a code location was built with, as a Dagster resource: the one channel through
which a run learns its home, its pipelines folder and its fault budgets (a run launched by the
daemon or the UI reads them as the location had them, not from its own environment again)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from ..settings import Settings


class SettingsResource(ConfigurableResource):
    """`Settings`, field by field (a resource's config is plain values)."""

    home: str
    storage_uri: str
    database_url: str
    pipelines_dir: str
    dagster_home: str
    s3_endpoint_url: str | None = None
    storage_retry_seconds: float
    database_outage_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> SettingsResource:
        return cls(
            home=str(settings.home), storage_uri=settings.storage_uri, database_url=settings.database_url,
            pipelines_dir=str(settings.pipelines_dir), dagster_home=str(settings.dagster_home), s3_endpoint_url=settings.s3_endpoint_url,
            storage_retry_seconds=settings.storage_retry_seconds, database_outage_seconds=settings.database_outage_seconds,
        )

    def settings(self) -> Settings:
        return Settings(
            home=Path(self.home), storage_uri=self.storage_uri, database_url=self.database_url, pipelines_dir=Path(self.pipelines_dir),
            dagster_home=Path(self.dagster_home), s3_endpoint_url=self.s3_endpoint_url,
            storage_retry_seconds=self.storage_retry_seconds, database_outage_seconds=self.database_outage_seconds,
        )
