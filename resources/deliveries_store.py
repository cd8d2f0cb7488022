"""Webhook deliveries of executions: recorded before the first attempt, updated after each one,
so `execution get` shows what was sent, how often it was tried and how it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from .clock import as_utc, utcnow
from .db_schema import deliveries


@dataclass
class Delivery:
    id: str
    execution_id: str
    event: str
    url: str
    status: str
    attempts: int
    response_status: int | None
    error: str | None
    signed: bool
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"], data["updated_at"] = self.created_at.isoformat(), self.updated_at.isoformat()
        return data


class DeliveryStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, delivery_id: str, execution_id: str, event: str, url: str, signed: bool) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(deliveries).values(
                id=delivery_id, execution_id=execution_id, event=event, url=url, status="pending", attempts=0,
                response_status=None, error=None, signed=signed, created_at=now, updated_at=now,
            ))

    def attempted(self, delivery_id: str, status: str, attempts: int, response_status: int | None, error: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
                status=status, attempts=attempts, response_status=response_status, error=error, updated_at=utcnow(),
            ))

    def of_execution(self, execution_id: str) -> list[Delivery]:
        query = select(deliveries).where(deliveries.c.execution_id == execution_id).order_by(deliveries.c.created_at, deliveries.c.id)
        with self.engine.connect() as conn:
            found = []
            for row in conn.execute(query):
                data = dict(row._mapping)
                data["created_at"], data["updated_at"] = as_utc(data["created_at"]), as_utc(data["updated_at"])
                found.append(Delivery(**data))
            return found
