"""`system health`: one probe per subsystem, each timed, each ok, warning, degraded or failed.

- Dagster's instance storages: runs, event log, schedules (a read of each).
- The daemon: its newest heartbeat. Needed only when a pipeline has a schedule or a run waits
  in the queue; then a missing or stale heartbeat degrades health (schedules do not tick, queued
  runs do not start).
- The factflow database: a query.
- Object storage: a real write, read back and delete of a probe object.
- The pipelines directory: every YAML valid.
- What the pipelines' adapters need on the machine (`Adapter.host_needs`: web_crawler's browser),
  found, and its version.
Each probe's exception is its finding, never the command's. Overall: unhealthy if any probe failed, degraded if any is degraded, healthy otherwise
(a `warning` probe, such as a missing browser no schedule or running execution needs, leaves it healthy).
"""

from __future__ import annotations

import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version

from resources.masking import mask_uri

from ..adapters.base import HostNeed, HostNeedMissing
from ..config import validate_directory
from ..settings import Settings

#: `warning`: worth a line, not a degraded system (the overall stays healthy, the exit 0).
OK, WARNING, DEGRADED, FAILED = "ok", "warning", "degraded", "failed"
#: The daemon beats every ~20 s; a heartbeat older than this means it is not running.
DAEMON_STALE_AFTER_S = 60
PROBE_PREFIX = "_health"
PACKAGES = ("factflow", "dagster", "dagster-webserver", "dagster-postgres", "sqlalchemy", "pydantic", "s3fs", "fsspec", "aiohttp", "httpx")


@dataclass
class Probe:
    name: str
    status: str
    detail: str
    seconds: float = 0.0
    debug: dict = field(default_factory=dict)


@dataclass
class HealthReport:
    overall: str  # healthy | degraded | unhealthy
    probes: list[Probe]
    debug: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {"healthy": 0, "degraded": 1, "unhealthy": 2}[self.overall]

    def to_dict(self, debug: bool) -> dict:
        probes = [asdict(p) if debug else {k: v for k, v in asdict(p).items() if k not in ("debug", "seconds")} for p in self.probes]
        return {"overall": self.overall, "probes": probes, **({"debug": self.debug} if debug else {})}


class Degraded(Exception):
    """A probe's subsystem works, but not as it should."""


class Warned(Exception):
    """Something is missing that nothing needs now (a browser for a pipeline nobody runs)."""


def _run(name: str, probe: Callable[[dict], str]) -> Probe:
    """Run one probe; it returns its detail and fills `debug`; an exception is its failure."""
    debug: dict = {}
    started = time.perf_counter()
    try:
        status, detail = OK, probe(debug)
    except Degraded as reason:
        status, detail = DEGRADED, str(reason)
    except Warned as reason:
        status, detail = WARNING, str(reason)
    except Exception as error:  # any failure of the subsystem is the probe's finding
        status, detail = FAILED, f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
    return Probe(name, status, detail, round(time.perf_counter() - started, 4), debug)


def check_health(settings: Settings) -> HealthReport:
    return HealthCheck(settings).report()


class HealthCheck:
    """The probes, one method each (`probe_*`), run in order by `report`: the pipelines first (the
    daemon and host-needs probes read them), then Dagster's storages, the daemon, the factflow
    database, object storage, and what the pipelines' adapters need on the machine."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pipelines: list = []  # validated by probe_pipelines
        self._opened: dict = {}

    def report(self) -> HealthReport:
        probes = [
            _run("pipelines", self.probe_pipelines),
            _run("dagster runs", self.probe_dagster_runs),
            _run("dagster event log", self.probe_dagster_event_log),
            _run("dagster schedules", self.probe_dagster_schedules),
            _run("dagster daemon", self.probe_daemon),
            _run("factflow database", self.probe_database),
            _run("object storage", self.probe_storage),
        ]
        needs = _host_needs(self.pipelines)
        for (what, key), (need, users) in needs.items():
            named = what if sum(w == what for w, _ in needs) == 1 else f"{what} {key}"
            probes.append(_run(named, partial(self.probe_host_need, need, users)))
        statuses = {p.status for p in probes}
        overall = "unhealthy" if FAILED in statuses else "degraded" if DEGRADED in statuses else "healthy"
        return HealthReport(overall, probes, {"versions": _versions(), "home": str(self.settings.home)})

    def instance(self):
        """The Dagster instance, opened once; a failure to open it is every Dagster probe's finding.
        On PostgreSQL one plain connection attempt comes first: dagster-postgres retries a refused
        connection with backoff for ~6 s per storage, which would make a down server slow to report."""
        opened = self._opened
        if "error" in opened:
            raise opened["error"]
        if "instance" not in opened:
            try:
                if self.settings.uses_postgres:
                    _connect_once(self.settings.database_url)
                from .instance import dagster_instance

                opened["instance"] = dagster_instance(self.settings)
            except Exception as error:
                opened["error"] = error
                raise
        return opened["instance"]

    def probe_pipelines(self, debug: dict) -> str:
        folder = self.settings.pipelines_dir
        debug.update(path=str(folder))
        if not folder.is_dir():
            raise Degraded(f"{folder} is not a folder")
        self.pipelines.extend(validate_directory(folder))
        invalid = [r for r in self.pipelines if not r.valid]
        if not self.pipelines:
            raise Degraded(f"no pipeline YAML in {folder}")
        if invalid:
            first = invalid[0].errors[0]
            raise Degraded(
                f"{len(invalid)} of {len(self.pipelines)} pipeline(s) invalid, first {invalid[0].source}: {first.code} "
                f"at {first.path or 'the document'}{f' (line {first.line})' if first.line else ''}: {first.message}"
            )
        return f"{len(self.pipelines)} pipeline(s), all valid"

    def probe_dagster_runs(self, debug: dict) -> str:
        storage = self.instance().run_storage  # the first Dagster probe: its time includes opening the instance
        debug.update(backend=type(storage).__name__, dagster_home=str(self.settings.dagster_home))
        return f"{self.instance().get_runs_count()} run(s)"

    def probe_dagster_event_log(self, debug: dict) -> str:
        storage = self.instance().event_log_storage
        debug.update(backend=type(storage).__name__)
        return f"newest event record {storage.get_maximum_record_id() or 0}"

    def probe_dagster_schedules(self, debug: dict) -> str:
        storage = self.instance().schedule_storage
        debug.update(backend=type(storage).__name__)
        return f"{len(self.instance().all_instigator_state())} schedule/sensor state(s)"

    def probe_daemon(self, debug: dict) -> str:
        from dagster import DagsterRunStatus, RunsFilter

        scheduled = [r.pipeline.name for r in self.pipelines if r.valid and r.pipeline.spec.schedule]
        queued = self.instance().get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
        beats = self.instance().get_daemon_heartbeats()
        newest = max((beat.timestamp for beat in beats.values()), default=None)
        age = None if newest is None else datetime.now(UTC).timestamp() - newest
        debug.update(daemons=sorted(beats), heartbeat_age_s=None if age is None else round(age, 1), scheduled_pipelines=scheduled, queued_runs=queued)
        needed = [f"schedules of {', '.join(scheduled)}"] if scheduled else []
        needed += [f"{queued} queued run(s)"] if queued else []
        if age is not None and age <= DAEMON_STALE_AFTER_S:
            return f"running, last heartbeat {age:.0f} s ago"
        seen = "no heartbeat ever" if age is None else f"last heartbeat {age:.0f} s ago"
        if needed:
            raise Degraded(f"not running ({seen}) but needed for {' and '.join(needed)}: start it with `factflow ui`")
        return f"not running ({seen}); not needed: no schedule, no queued run"

    def probe_database(self, debug: dict) -> str:
        from sqlalchemy import text

        from resources.database import FactflowDatabase

        debug.update(url=mask_uri(self.settings.database_url))
        db = FactflowDatabase(self.settings.database_url)
        debug.update(backend=db.engine.dialect.name)
        with db.engine.connect() as conn:
            executions = conn.execute(text("SELECT count(*) FROM factflow_executions")).scalar()
        return f"{executions} execution(s)"

    def probe_storage(self, debug: dict) -> str:
        from resources.storage import ObjectStore

        settings = self.settings
        debug.update(uri=mask_uri(settings.storage_uri), endpoint_url=mask_uri(settings.s3_endpoint_url))
        store = ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
        prefix = f"{PROBE_PREFIX}/{secrets.token_hex(8)}/"
        payload = secrets.token_bytes(64)
        try:
            store.put(prefix + "probe", payload, "application/octet-stream", {})
            if store.get(prefix + "probe") != payload:
                raise Degraded("the probe object read back differs from what was written")
        finally:
            store.delete_prefix(prefix)
        if store.keys(prefix):
            raise Degraded(f"the probe object under {prefix} could not be deleted")
        return f"write, read and delete under {store.url(prefix)}"

    def probe_host_need(self, need: HostNeed, users: list[str], debug: dict) -> str:
        """What the adapters of `users` (pipelines) need on the machine: its description, or a
        warning when it is missing and none of them runs now, degraded when one does."""
        debug.update(needed_by=users, key=need.key)
        try:
            return need.find()
        except HostNeedMissing as missing:
            said = f"{', '.join(users)} need it: {missing}"
            in_use = sorted(set(users) & _pipelines_in_use(self.settings, self.pipelines))
            if in_use:
                raise Degraded(f"{said}; {', '.join(in_use)} has a schedule or an execution queued or running") from None
            raise Warned(f"{said} (no schedule and no queued or running execution needs it now)") from None


def _host_needs(pipelines: list) -> dict[tuple[str, str], tuple[HostNeed, list[str]]]:
    """{(what, key): (need, pipelines)} of what the valid pipelines' adapters need on the machine."""
    needs: dict[tuple[str, str], tuple[HostNeed, list[str]]] = {}
    for result in pipelines:
        for stage in result.pipeline.stages if result.valid else ():
            for need in stage.adapter_class.host_needs(stage.adapter_config):
                _, users = needs.setdefault((need.what, need.key), (need, []))
                if result.pipeline.name not in users:
                    users.append(result.pipeline.name)
    return needs


def _pipelines_in_use(settings: Settings, pipelines: list) -> set[str]:
    """The valid pipelines with a schedule, and those of a queued or running execution (an
    unreachable database counts none: its own probe says so)."""
    used = {r.pipeline.name for r in pipelines if r.valid and r.pipeline.spec.schedule is not None}
    try:
        from resources.database import FactflowDatabase

        used |= {record.pipeline for record in FactflowDatabase(settings.database_url).executions.active()}
    except Exception:  # noqa: BLE001 (the database probe reports it)
        pass
    return used


def _connect_once(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        engine.connect().close()
    finally:
        engine.dispose()


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
