"""The pipeline's webhook: signed, retried with backoff, recorded, held to the network policy.

The delivery itself against httpx's mock transport (which answers are retried, after which
delays); then whole executions posting to a local receiver that fails twice before it accepts,
and one whose webhook host the network policy does not allow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
from e2e_harness import as_json
from test_dataset import page, sitemap

from factflow_assets.config.validate import validate_text
from factflow_assets.demo.server import Request, Resource, SiteServer
from resources.webhook import SIGNATURE_HEADER, WebhookRequest, deliver, signature

KEY = "correct horse battery staple"


def request(retries: int = 3) -> WebhookRequest:
    return WebhookRequest("d1", "http://hooks.test/in", '{"event": "completed"}', {"Content-Type": "application/json"}, 5.0, retries)


def answering(*statuses: int):
    """A transport answering each POST with the next status (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handle(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1], text="busy")

    return httpx.MockTransport(handle), seen


def test_a_failing_receiver_is_retried_with_doubling_delays_until_it_accepts():
    transport, seen = answering(503, 429, 200)
    attempts, delays = [], []
    outcome = deliver(request(), lambda *attempt: attempts.append(attempt), sleep=delays.append, transport=transport)
    assert outcome == "delivered" and len(seen) == 3 and delays == [1.0, 2.0]
    assert [a[0] for a in attempts] == ["pending", "pending", "delivered"]
    assert attempts[0][2:] == (503, "HTTP 503: busy") and attempts[-1] == ("delivered", 3, 200, None)


def test_an_answer_that_is_not_retried_ends_the_delivery_and_retries_run_out():
    transport, seen = answering(400)
    attempts = []
    assert deliver(request(), lambda *a: attempts.append(a), sleep=lambda s: None, transport=transport) == "failed"
    assert len(seen) == 1 and attempts == [("failed", 1, 400, "HTTP 400: busy")]

    transport, seen = answering(500)
    attempts = []
    assert deliver(request(retries=2), lambda *a: attempts.append(a), sleep=lambda s: None, transport=transport) == "failed"
    assert len(seen) == 3 and attempts[-1][:3] == ("failed", 3, 500)

    transport, seen = answering(302)  # a redirect is not followed: it could lead past the network policy
    assert deliver(request(), lambda *a: None, sleep=lambda s: None, transport=transport) == "failed" and len(seen) == 1


def test_the_signature_is_the_hmac_of_the_exact_body():
    body = b'{"event":"changed"}'
    assert signature(body, KEY) == "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    assert signature(body + b" ", KEY) != signature(body, KEY)


@pytest.mark.parametrize(
    ("block", "path"),
    [
        ("notify: {url: 'ftp://hooks.example.com/'}", "notify.url"),
        ("notify: {url: 'https://hooks.example.com/', events: [finished]}", "notify.events"),
        ("notify: {url: 'https://hooks.example.com/', secret_env: 'not a name'}", "notify.secret_env"),
        ("notify: {url: 'https://hooks.example.com/', retries: -1}", "notify.retries"),
    ],
)
def test_a_bad_notify_block_is_refused_with_its_path(block, path):
    text = "version: 1\nroutes:\n  - name: r\n    adapters:\n      - type: url_expander\ninit_message:\n  route: r\n  payload: {urls: []}\n"
    result = validate_text(text + block + "\n", "p")
    assert not result.valid
    assert any(path in finding.path for finding in result.errors), [f.path for f in result.errors]


def with_notify(pipelines, block: str) -> None:
    pipelines()
    folder = pipelines.folder
    (folder / "site_md.yaml").write_text((folder / "site_md.yaml").read_text() + block)


def wait_until_settled(execution_id: str, count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        deliveries = as_json("execution", "get", execution_id)["deliveries"]
        if len(deliveries) == count and all(d["status"] != "pending" for d in deliveries):
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.5)


@pytest.mark.slow
def test_an_execution_posts_signed_events_that_survive_a_failing_receiver(pipelines, monkeypatch):
    received: list[Request] = []

    def receiver(req: Request) -> Resource:
        received.append(req)
        tries = sum(r.headers.get("X-Factflow-Delivery") == req.headers.get("X-Factflow-Delivery") for r in received)
        return Resource(b"thanks", status=200 if tries > 2 else 503, content_type="text/plain")

    monkeypatch.setenv("FACTFLOW_TEST_HOOK_KEY", KEY)
    routes = {"/sitemap.xml": sitemap(["/a", "/b"]), "/a": page("Alpha", 2), "/b": page("Beta", 1), "/hook": receiver}
    with SiteServer(routes) as site:
        with_notify(pipelines, f"notify:\n  url: {site.url('/hook')}\n  secret_env: FACTFLOW_TEST_HOOK_KEY\n  events: [completed, changed, failed]\n")
        execution = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
        assert execution["status"] == "completed"
        deliveries = wait_until_settled(execution["id"], 2)

    assert sorted(d["event"] for d in deliveries) == ["changed", "completed"]  # the first crawl: everything is new
    assert all(d["status"] == "delivered" and d["attempts"] == 3 and d["response_status"] == 200 and d["signed"] for d in deliveries)
    assert len(received) == 6 and {r.method for r in received} == {"POST"}
    for req in received:
        assert req.headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(KEY.encode(), req.body, hashlib.sha256).hexdigest()
    body = json.loads(received[-1].body)
    assert body["execution"]["id"] == execution["id"] and body["execution"]["pipeline"] == "site_md"
    assert body["dataset"]["pages"]["rows"] == 2 and body["dataset"]["pages"]["uri"].endswith("dataset/pages.parquet")
    assert body["dataset"]["segments"]["rows"] >= 2 and body["changes"] is None and body["error"] is None
    assert {(c["route"], c["stage"]) for c in body["counts"]} >= {("markdown", "html_to_markdown"), ("dataset", "dataset")}


@pytest.mark.slow
def test_a_webhook_host_the_network_policy_does_not_allow_is_refused_and_the_execution_completes(pipelines):
    received: list[Request] = []
    routes = {"/sitemap.xml": sitemap(["/a"]), "/a": page("Alpha", 1), "/hook": lambda req: received.append(req) or Resource(b"ok")}
    with SiteServer(routes) as site:
        hook = site.url("/hook").replace("127.0.0.1", "localhost")  # the seed host is 127.0.0.1; localhost is not allowed
        with_notify(pipelines, f"notify:\n  url: {hook}\n")
        execution = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
        (delivery,) = wait_until_settled(execution["id"], 1)
    assert execution["status"] == "completed"
    assert delivery["status"] == "refused" and delivery["attempts"] == 0 and "network policy" in delivery["error"]
    assert received == []
