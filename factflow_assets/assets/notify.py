"""The pipeline's webhook (`notify:` in its YAML): which events a run sends, what the body says,
whether the network policy lets it out, and the record of each delivery.

A run that wrote its execution's dataset sends `completed`, and `changed` when the dataset differs
from its baseline's (or there is no baseline: all of it is new); a run that failed sends
`failed`. Each event the YAML asks for is one POST, recorded in `factflow_deliveries` before it
is sent (so `execution get` shows it, however it ends); the sending and retrying happen in a
detached process (`resources/webhook.py`), never in the run. A cancelled run sends nothing: an
operator stopped it and knows.

The body is JSON: the event, the execution (id, pipeline, run, kind, config, baseline), per-stage
counts from lineage, the dataset's tables (URI, rows, bytes), duplicates and the changefeed's
counts against the baseline. With `secret_env`, `X-Factflow-Signature: sha256=<hex>` is the
HMAC-SHA256 of the exact body under that variable's value; a delivery whose variable is unset
fails unsent rather than going out unsigned.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from resources.clock import utcnow
from resources.database import FactflowDatabase
from resources.executions_store import ExecutionRecord
from resources.storage import ObjectStore
from resources.webhook import SIGNATURE_HEADER, WebhookRequest, send_detached, signature

from ..config.models import Notify
from ..dataset.build import DatasetResult
from ..fetching.network_policy import NetworkPolicy, RequestRefused

CHANGES = ("added", "changed", "removed")


@dataclass
class Notifier:
    """What one run sends. `warn` gets a line for each delivery refused or not sent."""

    spec: Notify | None
    policy: NetworkPolicy
    db: FactflowDatabase
    record: ExecutionRecord
    run_id: str
    run_kind: str
    warn: Callable[[str], None]

    def completed(self, store: ObjectStore, dataset: DatasetResult) -> None:
        """After the dataset was written."""
        if self.spec is None:
            return
        body = self._body(store, dataset)
        self._send(self.spec, "completed", body)
        if dataset.changes is None or any(counts.get(c) for counts in dataset.changes.values() for c in CHANGES):
            self._send(self.spec, "changed", body)

    def failed(self, error: str) -> None:
        if self.spec is None:
            return
        self._send(self.spec, "failed", {**self._body(None, None), "error": error})

    def _body(self, store: ObjectStore | None, dataset: DatasetResult | None) -> dict[str, Any]:
        record = self.record
        counts = [
            {key: row[key] for key in ("route", "stage", "completed", "failed", "skipped", "pending", "cancelled")}
            for row in self.db.lineage_queries.stats(record.id)
        ]
        body: dict[str, Any] = {
            "execution": {
                "id": record.id, "pipeline": record.pipeline, "run_id": self.run_id, "run_kind": self.run_kind,
                "config_hash": record.config_hash, "created_at": record.created_at.isoformat(),
                "baseline": dataset.baseline if dataset is not None else None,
            },
            "counts": counts,
            "dataset": None,
            "changes": None,
            "error": None,
        }
        if store is not None and dataset is not None and dataset.written:
            body["dataset"] = {
                what: {"uri": store.url(written.key), "rows": written.rows, "bytes": written.bytes}
                for what, written in dataset.written.items()
            } | {"duplicates": dict(dataset.duplicates)}
            body["changes"] = dataset.changes
        return body

    def _send(self, spec: Notify, event: str, body: dict[str, Any]) -> None:
        if event not in spec.events:
            return
        delivery_id = uuid.uuid4().hex
        payload = json.dumps({"event": event, "delivery_id": delivery_id, "sent_at": utcnow().isoformat(), **body}, ensure_ascii=False)
        key = os.environ.get(spec.secret_env) if spec.secret_env else None
        self.db.deliveries.add(delivery_id, self.record.id, event, spec.url, signed=key is not None)
        refusal = self._refusal(spec.url)
        if spec.secret_env and key is None:
            refusal = f"the signing key's variable {spec.secret_env} is not set in the run's environment: not sent unsigned"
        if refusal is not None:
            self.db.deliveries.attempted(delivery_id, "refused", 0, None, refusal)
            self.warn(f"webhook {event} not sent: {refusal}")
            return
        headers = {"Content-Type": "application/json", "User-Agent": "factflow-webhook", "X-Factflow-Event": event, "X-Factflow-Delivery": delivery_id}
        if key is not None:
            headers[SIGNATURE_HEADER] = signature(payload.encode(), key)
        request = WebhookRequest(delivery_id, spec.url, payload, headers, spec.timeout, spec.retries)
        try:
            send_detached(request, self.db.url)
        except OSError as error:
            self.db.deliveries.attempted(delivery_id, "failed", 0, None, f"the delivery process did not start: {error}")
            self.warn(f"webhook {event} not sent: {error}")

    def _refusal(self, url: str) -> str | None:
        """The network policy's verdict on the webhook's URL (None: it may go)."""
        try:
            asyncio.run(self.policy.check(httpx.URL(url)))
        except RequestRefused as refused:
            return str(refused)
        return None
