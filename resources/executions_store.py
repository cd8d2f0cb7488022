"""Executions and the configs they froze."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from .clock import as_utc, utcnow
from .db_schema import configs, executions, replays
from .errors import FactflowError, NotFoundError
from .masking import mask_values
from .statuses import ACTIVE_STATUSES
from .transactions import writing


@dataclass
class ExecutionRecord:
    id: str
    pipeline: str
    tag: str | None
    status: str
    config_hash: str
    init_route: str
    init_payload: dict[str, Any]
    overrides: dict[str, Any]
    parent_id: str | None
    origin: dict[str, Any]
    dagster_run_id: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    first_finished_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_s(self) -> float | None:
        """The first run's span: what the crawl took, not stretched by replays or resumes days later
        (`finished_at` is the last activity)."""
        if self.started_at is None:
            return None
        end = self.first_finished_at or self.finished_at or utcnow()
        return round((end - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        """For showing: a password in a URL of the payload (`--set url=https://u:pw@host/`) masked."""
        data = asdict(self)
        data["init_payload"], data["overrides"] = mask_values(data["init_payload"]), mask_values(data["overrides"])
        for name in ("created_at", "started_at", "finished_at", "first_finished_at"):
            data[name] = data[name].isoformat() if data[name] else None
        data["duration_s"] = self.duration_s
        return data


def _record(row) -> ExecutionRecord:
    data = dict(row._mapping)
    for name in ("created_at", "started_at", "finished_at", "first_finished_at"):
        data[name] = as_utc(data[name])
    return ExecutionRecord(**data)


class ExecutionStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- configs -----------------------------------------------------------------------------

    def save_config(self, pipeline: str, config_hash: str, yaml_text: str, conn: Connection | None = None) -> None:
        with writing(self.engine, conn) as conn:
            exists = conn.execute(select(configs.c.config_hash).where(configs.c.config_hash == config_hash)).first()
            if not exists:
                conn.execute(insert(configs).values(config_hash=config_hash, pipeline=pipeline, yaml=yaml_text, created_at=utcnow()))

    def config(self, config_hash: str) -> tuple[str, str]:
        """(pipeline name, YAML text) of a frozen config."""
        with self.engine.connect() as conn:
            row = conn.execute(select(configs.c.pipeline, configs.c.yaml).where(configs.c.config_hash == config_hash)).first()
        if row is None:
            raise NotFoundError(f"no frozen config with hash {config_hash}")
        return row.pipeline, row.yaml

    def find_config(self, text: str) -> dict[str, Any]:
        """The frozen config `text` names: its hash, a unique prefix of it (6 characters or more),
        or an execution (id or tag), meaning the config it runs with now."""
        matches: Sequence[Any] = []
        if len(text) >= 6 and all(c in "0123456789abcdef" for c in text):
            with self.engine.connect() as conn:
                matches = conn.execute(select(configs).where(configs.c.config_hash.startswith(text)).limit(6)).all()
        if len(matches) > 1:
            raise NotFoundError(f"{text!r} begins {len(matches)} config hashes; give more of it")
        if not matches:
            record = self.get(text) or self.find_by_tag(text)
            if record is None:
                raise NotFoundError(f"no config hash, execution id or tag {text!r}")
            with self.engine.connect() as conn:
                matches = conn.execute(select(configs).where(configs.c.config_hash == record.config_hash)).all()
        row = dict(matches[0]._mapping)
        row["created_at"] = as_utc(row["created_at"])
        return row

    def config_uses(self) -> list[dict[str, Any]]:
        """Every frozen config, newest first: its pipeline, when it was first stored, when an
        execution last started or was replayed with it, and the executions that ran it (now, or
        before a replay moved them on to a newer one)."""
        with self.engine.connect() as conn:
            stored = conn.execute(select(configs.c.config_hash, configs.c.pipeline, configs.c.created_at)).all()
            ran = conn.execute(select(executions.c.id, executions.c.config_hash, executions.c.created_at)).all()
            replayed = conn.execute(
                select(replays.c.target_execution_id, replays.c.config_hash, replays.c.previous_config_hash, replays.c.created_at)
            ).all()
        uses: dict[str, tuple[set[str], list]] = {row.config_hash: (set(), []) for row in stored}
        for execution_id, config_hash, created_at in ran:
            if config_hash in uses:
                uses[config_hash][0].add(execution_id)
                uses[config_hash][1].append(as_utc(created_at))
        for target, config_hash, previous, created_at in replayed:
            for used in (config_hash, previous):
                if used in uses:
                    uses[used][0].add(target)
            if config_hash in uses:
                uses[config_hash][1].append(as_utc(created_at))
        listed = [
            {
                "config_hash": row.config_hash,
                "pipeline": row.pipeline,
                "first_used_at": as_utc(row.created_at),
                "last_used_at": max(uses[row.config_hash][1], default=as_utc(row.created_at)),
                "executions": sorted(uses[row.config_hash][0]),
            }
            for row in stored
        ]
        return sorted(listed, key=lambda c: c["last_used_at"], reverse=True)

    # --- executions --------------------------------------------------------------------------

    def create(self, record: ExecutionRecord) -> ExecutionRecord:
        values = asdict(record)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(executions).values(**values))
        except IntegrityError:
            holder = self.find_by_tag(record.tag) if record.tag else None
            if holder:
                raise FactflowError(f"tag {record.tag!r} already names execution {holder.id}") from None
            raise
        return record

    def get(self, execution_id: str) -> ExecutionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.id == execution_id)).first()
        return _record(row) if row else None

    def find_by_tag(self, tag: str) -> ExecutionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.tag == tag)).first()
        return _record(row) if row else None

    def resolve(self, id_or_tag: str) -> ExecutionRecord:
        """The execution with this id, or else this tag; NotFoundError otherwise."""
        record = self.get(id_or_tag) or self.find_by_tag(id_or_tag)
        if record is None:
            raise NotFoundError(f"no execution with id or tag {id_or_tag!r}")
        return record

    def recent(self, *, status: str | None = None, pipeline: str | None = None, limit: int = 50) -> list[ExecutionRecord]:
        query = select(executions).order_by(executions.c.id.desc()).limit(limit)
        if status:
            query = query.where(executions.c.status == status)
        if pipeline:
            query = query.where(executions.c.pipeline == pipeline)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def active(self) -> list[ExecutionRecord]:
        """Every queued or running execution, oldest first."""
        query = select(executions).where(executions.c.status.in_(ACTIVE_STATUSES)).order_by(executions.c.id)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def children(self, execution_id: str) -> list[ExecutionRecord]:
        query = select(executions).where(executions.c.parent_id == execution_id).order_by(executions.c.id)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def set_config(self, execution_id: str, config_hash: str, conn: Connection | None = None) -> None:
        """Make `config_hash` the execution's current config (a replay ran it with a newer one)."""
        with writing(self.engine, conn) as conn:
            conn.execute(update(executions).where(executions.c.id == execution_id).values(config_hash=config_hash))

    def set_status(self, execution_id: str, status: str, *, run_id: str | None = None, error: str | None = None) -> None:
        """Move an execution to `status`, stamping when it started and when it ended."""
        now = utcnow()
        values: dict[str, Any] = {"status": status}
        if run_id:
            values["dagster_run_id"] = run_id
        if status in ACTIVE_STATUSES:
            values["finished_at"] = None
            values["error"] = None
        else:
            values["finished_at"] = now
            values["error"] = error
        with self.engine.begin() as conn:
            conn.execute(update(executions).where(executions.c.id == execution_id).values(**values))
            if status not in ACTIVE_STATUSES:
                conn.execute(
                    update(executions)
                    .where(executions.c.id == execution_id, executions.c.first_finished_at.is_(None))
                    .values(first_finished_at=now)
                )
            if status == "running":
                conn.execute(
                    update(executions)
                    .where(executions.c.id == execution_id, executions.c.started_at.is_(None))
                    .values(started_at=now)
                )
