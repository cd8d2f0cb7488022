"""One webhook delivery: POSTed, retried with backoff, each attempt recorded.

The run that ends an execution must not wait for the receiver (a slow or absent one would hold
the run, and its process, for minutes of retries), and a thread of the run's process dies with
it. So the run records the delivery, signs the body and hands the request to a detached process
(`python -m resources.webhook DELIVERY_ID`, the request on stdin, the database URL in its
environment), which tries until the receiver answers 2xx, gives a final answer, or the attempts run
out. The key never leaves the run's process: the child gets the signed headers only.

What is retried: connection errors, timeouts, 408, 429 and 5xx, after 1, 2, 4... seconds (at most
60). Another answer (a 4xx, a redirect: redirects are not followed, a Location could lead past
the network policy) ends the delivery as failed at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import httpx

SIGNATURE_HEADER = "X-Factflow-Signature"
#: The variable the delivery process reads the factflow database URL from.
DATABASE_VARIABLE = "FACTFLOW_DATABASE_URL"
RETRIED_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
MAX_DELAY = 60.0


def signature(body: bytes, key: str) -> str:
    """The header value receivers check: `sha256=` and the HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookRequest:
    delivery_id: str
    url: str
    body: str
    headers: dict[str, str]
    timeout: float
    retries: int


def send_detached(request: WebhookRequest, database_url: str) -> subprocess.Popen:
    """Start the delivery process and return at once (its own session: a Ctrl+C or a terminated
    run does not take it down)."""
    env = dict(os.environ, **{DATABASE_VARIABLE: database_url})
    child = subprocess.Popen(
        [sys.executable, "-m", "resources.webhook", request.delivery_id],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    assert child.stdin is not None  # stdin=PIPE
    child.stdin.write(json.dumps(asdict(request)).encode())
    child.stdin.close()
    return child


def deliver(request: WebhookRequest, record, sleep=time.sleep, transport: httpx.BaseTransport | None = None) -> str:
    """Try until delivered or given up; `record(status, attempts, response_status, error)` after
    each attempt. Returns the final status: delivered or failed."""
    delay, attempts = 1.0, 0
    with httpx.Client(timeout=request.timeout, follow_redirects=False, transport=transport) as client:
        while True:
            attempts += 1
            answer, error = None, None
            try:
                response = client.post(request.url, content=request.body.encode(), headers=request.headers)
                answer = response.status_code
                if not response.is_success:
                    error = f"HTTP {answer}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is None:
                record("delivered", attempts, answer, None)
                return "delivered"
            retried = answer is None or answer in RETRIED_STATUSES
            if not retried or attempts > request.retries:
                record("failed", attempts, answer, error)
                return "failed"
            record("pending", attempts, answer, error)
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY)


def main() -> None:
    from .database import FactflowDatabase

    request = WebhookRequest(**json.loads(sys.stdin.read()))
    db = FactflowDatabase(os.environ[DATABASE_VARIABLE])
    deliver(request, lambda status, attempts, answer, error: db.deliveries.attempted(request.delivery_id, status, attempts, answer, error))


if __name__ == "__main__":
    main()
