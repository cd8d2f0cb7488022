"""Request settings: a stage's agent, headers and cookies sent, secrets from the environment
never shown, robots.txt matched against the configured agent, credentials kept from other hosts."""

from __future__ import annotations

import json

import pytest
from e2e_harness import rows, run

from factflow_assets.config.validate import validate_text
from factflow_assets.demo.server import Request, Resource, SiteServer
from resources.masking import mask_text, register_secret

TOKEN = "tok-5f1e2d3c4b5a69788796a5b4"
SESSION = "sess-0a1b2c3d4e5f"
AGENT = "acme-docs-bot/2.0 (+https://acme.example/bot)"

PIPELINE = """\
version: 1
routes:
  - name: scrape
    adapters:
      - type: sitemap_parser
      - type: url_expander
      - type: {fetcher}
        config:
          user_agent: "{agent}"
          headers: {{Authorization: "Bearer ${{FACTFLOW_TEST_TOKEN}}", X-Team: docs}}
          cookies: {{session: "${{FACTFLOW_TEST_SESSION}}"}}
          rate_limit: {{initial_rps: 50, max_rps: 100}}
      - type: web_content_storage
network: {{allow_hosts: [localhost]}}
init_message:
  route: scrape
  payload: {{sitemap_url: http://127.0.0.1:1/sitemap.xml}}
"""


def page(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>Text of {title}.</p></main></body></html>".encode()


def test_a_registered_secret_is_masked_wherever_text_is_masked():
    register_secret("Zq9-unique-secret-value")
    assert mask_text("failed: token Zq9-unique-secret-value refused") == "failed: token *** refused"


@pytest.mark.parametrize("name", ["Host", "Cookie", "user-agent", "Bad Header", "Content-Length"])
def test_headers_the_fetch_sets_or_that_are_not_header_names_are_refused(name):
    text = PIPELINE.format(fetcher="web_scraper", agent="a").replace("X-Team: docs", f"'{name}': x")
    result = validate_text(text, "p")
    assert not result.valid and any(f.code == "E201" and "headers" in f.path for f in result.errors), result.findings


@pytest.mark.slow
def test_agent_headers_and_cookies_are_sent_and_their_secrets_never_shown(pipelines, env, monkeypatch):
    db, store = env
    monkeypatch.setenv("FACTFLOW_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("FACTFLOW_TEST_SESSION", SESSION)
    (pipelines.folder / "private_docs.yaml").write_text(PIPELINE.format(fetcher="web_scraper", agent=AGENT))
    seen: list[Request] = []

    def guarded(title: str):
        def answer(request: Request) -> Resource:
            seen.append(request)
            ok = (
                request.headers.get("Authorization") == f"Bearer {TOKEN}" and request.headers.get("Cookie") == f"session={SESSION}"
                and request.headers.get("User-Agent") == AGENT and request.headers.get("X-Team") == "docs"
            )
            return Resource(page(title)) if ok else Resource(b"forbidden", status=403)

        return answer

    def elsewhere(request: Request) -> Resource:
        seen.append(request)
        return Resource(page("Moved"))

    robots = b"User-agent: acme-docs-bot\nDisallow: /docs/private\n\nUser-agent: *\nAllow: /\n"
    with SiteServer() as site:
        moved_to = site.url("/landing.html").replace("127.0.0.1", "localhost")
        urls = ["/docs/a.html", "/docs/b.html", "/docs/private/c.html", "/docs/moved.html"]
        listing = "".join(f"<url><loc>{{{{base_url}}}}{u}</loc></url>" for u in urls)
        site.routes.update({
            "/sitemap.xml": Resource(f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{listing}</urlset>'.encode(), "application/xml"),
            "/robots.txt": Resource(robots, "text/plain"),
            "/docs/a.html": guarded("A"), "/docs/b.html": guarded("B"), "/docs/private/c.html": guarded("C"),
            "/docs/moved.html": Resource(b"", status=302, headers={"Location": moved_to}),
            "/landing.html": elsewhere,
        })
        result = run("execution", "start", "private_docs", "--set", f"sitemap_url={site.url('/sitemap.xml')}", "--output", "json")
    assert result.exit_code == 0, result.output
    execution = json.loads(result.stdout)
    assert execution["status"] == "completed"

    fetched = {r["metadata"]["url"].rsplit("/", 1)[1]: r for r in rows(db, execution["id"], "web_scraper")}
    assert fetched["a.html"]["status"] == fetched["b.html"]["status"] == fetched["moved.html"]["status"] == "completed"
    assert fetched["c.html"]["status"] == "skipped" and "robots.txt" in fetched["c.html"]["error_message"]  # the agent's own rules
    landing = [r for r in seen if r.path == "/landing.html"]
    assert landing and "Authorization" not in landing[0].headers and "Cookie" not in landing[0].headers  # not to another host

    shown = [result.output, json.dumps(rows(db, execution["id"]), default=str), run("execution", "get", execution["id"]).output]
    shown.append(run("execution", "get", execution["id"], "--output", "json").output)
    shown += [json.dumps(store.metadata(o.key)) for o in store.objects(f"executions/{execution['id']}/")]
    for text in shown:
        assert TOKEN not in text and SESSION not in text
    _pipeline, frozen = db.executions.config(execution["config_hash"])  # the YAML as it ran: the reference, not the value
    assert "${FACTFLOW_TEST_TOKEN}" in frozen and TOKEN not in frozen


@pytest.mark.slow
def test_a_variable_that_is_not_set_fails_the_run_naming_it(pipelines, monkeypatch):
    monkeypatch.delenv("FACTFLOW_TEST_TOKEN", raising=False)
    monkeypatch.setenv("FACTFLOW_TEST_SESSION", SESSION)
    (pipelines.folder / "private_docs.yaml").write_text(PIPELINE.format(fetcher="web_scraper", agent=AGENT))
    with SiteServer(
        {
            "/sitemap.xml": Resource(
                b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{{base_url}}/a</loc></url></urlset>', "application/xml"
            )
        }
    ) as site:
        result = run("execution", "start", "private_docs", "--set", f"sitemap_url={site.url('/sitemap.xml')}")
    assert result.exit_code != 0
    assert "environment variable FACTFLOW_TEST_TOKEN (named in headers.Authorization) is not set" in result.output
