"""The pipeline YAML, as pydantic models.

These models check structure and values; the adapter `config` mappings are checked against each
adapter's own model by the validator (`validate.py`), which also turns pydantic errors into
findings with stable codes.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SUPPORTED_VERSIONS = (1,)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorHandling(_Strict):
    retries: int = Field(0, ge=0, le=100, description="Extra attempts after an adapter raises.")
    retry_delay: float = Field(1.0, ge=0, description="Seconds before the first retry; doubles.")
    on_failure: Literal["continue", "fail_stage"] = Field(
        "continue",
        description="`continue`: a failed message is a failed lineage row and the stage goes on. "
        "`fail_stage`: the stage still processes every message, then fails if any failed.",
    )


class AdapterSpec(_Strict):
    type: str
    name: str | None = Field(None, pattern=NAME_PATTERN)
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def stage_name(self) -> str:
        return self.name or self.type


class RouteInput(_Strict):
    route: str
    stage: str | None = Field(None, description="Default: the last stage of `route`.")


class RouteSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    concurrency: int = Field(4, ge=1, le=1000, description="Messages in flight at once per stage.")
    error_handling: ErrorHandling = ErrorHandling()
    input: RouteInput | None = None
    adapters: list[AdapterSpec] = Field(min_length=1)


class InitMessage(_Strict):
    route: str
    payload: dict[str, Any] = Field(default_factory=dict)


class Schedule(_Strict):
    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        """Valid for Dagster, which runs it: a schedule definition checks its cron string (the
        public way to ask; imported here only, as validating other files needs no Dagster)."""
        from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

        try:
            ScheduleDefinition(name="cron_check", cron_schedule=value, job_name="cron_check")
        except DagsterInvalidDefinitionError:
            raise ValueError(f"not a valid cron expression: {value!r}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class NetworkSpec(_Strict):
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts fetched besides the seed URLs' own: `docs.example.com`, `*.example.com` "
        "(its subdomains), `*` (any host).",
    )
    allow_link_local: bool = Field(
        False, description="Reach link-local and cloud metadata addresses (169.254.169.254, ...); refused by default."
    )

    @field_validator("allow_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not _HOST_PATTERN.match(host):
                raise ValueError(f"not a host name, `*.domain` or `*`: {host!r}")
        return hosts


_HOST_PATTERN = re.compile(r"^(\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?|\[?[0-9A-Fa-f:.]+\]?)$")


class Retention(_Strict):
    """Which executions of the pipeline a schedule keeps: applied after each scheduled execution
    completes (`factflow execution prune` does the same by hand)."""

    keep: int | None = Field(None, ge=1, description="The newest N executions stay.")
    older_than: str | None = Field(None, description="Of the others, those older than this go: 30d, 12h, 2w.")

    @field_validator("older_than")
    @classmethod
    def _age(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+[smhdw]", value.strip()):
            raise ValueError(f"not an age: {value!r} (a number and one of s, m, h, d, w)")
        return value

    @model_validator(mode="after")
    def _says_what_to_keep(self) -> Retention:
        if self.keep is None and self.older_than is None:
            raise ValueError("say what to keep: keep, older_than, or both")
        return self


NotifyEvent = Literal["completed", "failed", "changed"]


def _default_notify_events() -> list[NotifyEvent]:
    return ["completed", "failed"]


class Notify(_Strict):
    """A webhook the pipeline's executions POST to when they end (README, "The dataset")."""

    url: str = Field(description="http(s) URL the JSON body is POSTed to; its host must pass the network policy.")
    secret_env: str | None = Field(
        None, description="Environment variable holding the HMAC-SHA256 key; the body's signature goes in X-Factflow-Signature."
    )
    events: list[NotifyEvent] = Field(
        default_factory=_default_notify_events,
        min_length=1,
        description="`completed`: the run wrote the dataset; `changed`: and it differs from the baseline's "
        "(or there is no baseline); `failed`: the run failed.",
    )
    timeout: float = Field(10.0, gt=0, le=300, description="Seconds one attempt may take.")
    retries: int = Field(5, ge=0, le=20, description="Extra attempts after a connection error, a timeout, 408, 429 or 5xx; the delay doubles from 1 s.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.strip()

    @field_validator("secret_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))


class PipelineSpec(_Strict):
    version: int
    description: str = ""
    routes: list[RouteSpec] = Field(min_length=1)
    init_message: InitMessage
    schedule: Schedule | None = None
    network: NetworkSpec = NetworkSpec()
    retention: Retention | None = None
    #: `latest`: every execution started without --since (a schedule's too) compares with the
    #: newest completed one of this pipeline with the same init payload (`execution start --since`).
    incremental: Literal["latest"] | None = None
    notify: Notify | None = None
