"""The network policy: seed hosts and the YAML's allow-list only, never link-local or metadata addresses."""

import asyncio
import time

import httpx
import pytest

from factflow_assets.adapters.base import PermanentError
from factflow_assets.config import validate_text
from factflow_assets.demo.server import Resource
from factflow_assets.fetching.network_policy import (
    NetworkPolicy,
    RequestRefused,
    seed_hosts,
)
from resources.storage import stage_prefix
from tests.adapter_harness import json_message, run_adapter
from tests.conftest import html_page
from tests.e2e_harness import as_json, rows

FAST = {"backoff": 0.01, "respect_robots": False, "rate_limit": {"initial_rps": 100, "max_rps": 200}}


def check(policy: NetworkPolicy, url: str) -> None:
    asyncio.run(policy.check(httpx.URL(url)))


def test_seed_hosts_are_the_hosts_of_every_url_in_the_payload():
    payload = {"sitemap_url": "https://Docs.Example.com/sitemap.xml", "more": [{"u": "http://other.org:8080/x"}], "n": 3, "t": "not a url"}
    assert seed_hosts(payload) == {"docs.example.com", "other.org"}


def test_a_seed_in_punycode_or_with_a_trailing_dot_passes_its_own_policy():
    """One normal form for hosts: the seed as written (punycode, Unicode, a trailing dot) and the
    request's host (httpx gives it decoded) meet there."""

    async def public(host: str) -> list[str]:
        return ["93.184.216.34"]

    for seed in ("https://xn--bcher-kva.example/", "https://Bücher.example./", "https://bücher.example/"):
        policy = NetworkPolicy(seed_hosts({"start_url": seed}), resolver=public)
        for url in ("https://bücher.example/a", "https://xn--bcher-kva.example./a", "https://BÜCHER.example/a"):
            check(policy, url)
    policy = NetworkPolicy(seed_hosts({"u": "https://docs.example.com./"}), resolver=public)
    check(policy, "https://docs.example.com/a")
    assert NetworkPolicy(frozenset(), ("*.xn--bcher-kva.example",)).host_allowed("docs.bücher.example")


def test_only_seed_hosts_and_allowed_patterns_pass():
    policy = NetworkPolicy(frozenset({"docs.example.com"}), ("*.example.org", "api.example.net"))
    for allowed in ("docs.example.com", "DOCS.example.com.", "a.example.org", "b.c.example.org", "api.example.net"):
        assert policy.host_allowed(allowed), allowed
    for refused in ("example.com", "evil.com", "example.org", "xexample.org", "docs.example.com.evil.com"):
        assert not policy.host_allowed(refused), refused
    assert NetworkPolicy(frozenset(), ("*",)).host_allowed("anything.at.all")


def test_link_local_and_metadata_addresses_are_refused_whatever_the_host_is_called():
    async def resolves_to_metadata(host):
        return ["169.254.169.254"]

    anywhere = NetworkPolicy(frozenset(), ("*",), resolver=resolves_to_metadata)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fd00:ec2::254]/",
                "http://100.100.100.200/", "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/",
                "http://innocent-looking.example/"):
        with pytest.raises(RequestRefused, match="link-local or metadata|metadata service"):
            check(anywhere, url)
    allowed = NetworkPolicy(frozenset(), ("*",), allow_link_local=True, resolver=resolves_to_metadata)
    check(allowed, "http://169.254.169.254/latest/meta-data/")
    check(allowed, "http://innocent-looking.example/")


def test_every_address_a_name_resolves_to_is_checked_not_only_the_first():
    """A resolver may answer a public address first and the metadata address after it; the
    connection could use either, so any forbidden one refuses the host."""

    async def public_then_metadata(host):
        return ["93.184.216.34", "2606:2800:220:1::1", "169.254.169.254"]

    async def public_only(host):
        return ["93.184.216.34", "2606:2800:220:1::1"]

    with pytest.raises(RequestRefused, match="169.254.169.254"):
        check(NetworkPolicy(frozenset(), ("*",), resolver=public_then_metadata), "http://two-faced.example/")
    check(NetworkPolicy(frozenset(), ("*",), resolver=public_only), "http://two-faced.example/")


def test_a_redirect_to_another_host_is_refused_before_it_is_sent(site):
    """127.0.0.1 and localhost are the same server here, but not the same host to the policy."""
    target = site({"/page": html_page("Here")})
    server = site({"/go": Resource(status=302, headers={"Location": target.url("/page").replace("127.0.0.1", "localhost")})})
    policy = NetworkPolicy(seed_hosts({"url": server.url("/go")}))
    with pytest.raises(RequestRefused, match="localhost is not a host of this pipeline"):
        run_adapter("web_scraper", json_message({"url": server.url("/go")}), FAST, policy=policy)
    assert server.requests["/go"] == 1 and target.requests.get("/page", 0) == 0
    # without the policy the same redirect is followed
    (emit,) = run_adapter("web_scraper", json_message({"url": server.url("/go")}), FAST)
    assert b"<title>Here</title>" in emit.body


def test_a_refused_request_is_not_retried():
    policy = NetworkPolicy(frozenset({"127.0.0.1"}))
    started = time.monotonic()
    with pytest.raises(RequestRefused):
        run_adapter("web_scraper", json_message({"url": "http://169.254.169.254/latest/meta-data/"}), {**FAST, "retries": 3, "backoff": 1}, policy=policy)
    assert time.monotonic() - started < 5  # no backoff: refused once (with it: 1 + 2 + 4 s of waiting)


@pytest.mark.parametrize("hosts", [["exa mple.com"], ["http://example.com"], ["example.com/path"], ["*example.com"]])
def test_a_bad_allow_list_entry_is_reported_with_its_path(hosts):
    text = f"""\
version: 1
routes:
  - name: r
    adapters:
      - type: url_expander
network:
  allow_hosts: {hosts!r}
init_message:
  route: r
  payload: {{}}
"""
    findings = validate_text(text, "p").errors
    assert findings and findings[0].code == "E201" and findings[0].path.startswith("network.allow_hosts"), findings


SCRAPE = """\
version: 1
routes:
  - name: scrape
    adapters:
      - type: sitemap_parser
      - type: url_expander
      - type: web_scraper
        config:
          respect_robots: false
          retries: 0
          rate_limit: {{initial_rps: 50, max_rps: 100}}
{network}init_message:
  route: scrape
  payload:
    sitemap_url: http://127.0.0.1:1/unset.xml
"""


@pytest.mark.slow
def test_an_execution_fetches_only_its_own_hosts_unless_the_yaml_allows_more(site, pipelines, env, tmp_path, monkeypatch):
    """A sitemap listing another host and the metadata address: neither becomes a message (nothing
    stored, nothing sent), the url_expander's row counts them with the reason;
    `network.allow_hosts` lets the other host through, never the metadata address."""
    server = site({"/page": html_page("Mine"), "/other": html_page("Theirs")})
    other = server.url("/other").replace("127.0.0.1", "localhost")
    urls = [server.url("/page"), other, "http://169.254.169.254/latest/meta-data/"]
    server.routes["/sitemap.xml"] = Resource(
        ("<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>" + "".join(f"<url><loc>{u}</loc></url>" for u in urls) + "</urlset>").encode(),
        content_type="application/xml",
    )
    db, store = env
    folder = tmp_path / "pipelines"
    scraped, expanded, stored = {}, {}, {}
    for name, network in (("closed", ""), ("widened", "network:\n  allow_hosts: [localhost]\n")):
        (folder / f"{name}.yaml").write_text(SCRAPE.format(network=network))
        report = as_json("execution", "start", name, "--set", f"sitemap_url={server.url('/sitemap.xml')}")
        scraped[name] = {r["metadata"]["url"]: r["status"] for r in rows(db, report["execution_id"], "web_scraper")}
        (expanded[name],) = rows(db, report["execution_id"], "url_expander")
        stored[name] = store.keys(stage_prefix(report["execution_id"], "scrape", "url_expander"))

    assert scraped["closed"] == {urls[0]: "completed"} and len(stored["closed"]) == 1
    closed = expanded["closed"]["metadata"]
    assert closed["refused_urls"] == 2 and "is not a host of this pipeline" in closed["refused_example"]
    assert scraped["widened"] == {urls[0]: "completed", urls[1]: "completed"} and len(stored["widened"]) == 2
    assert expanded["widened"]["metadata"]["refused_urls"] == 1 and "169.254.169.254" in expanded["widened"]["metadata"]["refused_example"]
    assert server.requests["/other"] == 1  # only the widened execution fetched it


def test_urls_the_policy_refuses_become_no_messages_and_are_counted():
    policy = NetworkPolicy(frozenset({"docs.example"}), resolver=lambda host: _answer(["93.184.216.34"]))
    message = json_message({"urls": ["https://docs.example/a", "https://elsewhere.example/b", "http://169.254.169.254/x", "https://docs.example/c"]})
    emits = run_adapter("url_expander", message, policy=policy)
    assert [e.body["url"] for e in emits] == ["https://docs.example/a", "https://docs.example/c"]
    assert message.notes["refused_urls"] == 2 and "elsewhere.example is not a host of this pipeline" in message.notes["refused_example"]

    everything_refused = json_message({"urls": ["https://elsewhere.example/b"]})
    with pytest.raises(PermanentError, match="refused all 1 URLs"):
        run_adapter("url_expander", everything_refused, policy=policy)


async def _answer(addresses: list[str]) -> list[str]:
    return addresses
