"""web_crawler: pages a script builds are stored as the browser rendered them, within the network
policy, and a page or browser that fails fails only its page."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import require_corpus, services_required

from benchmarks.corpora import AEB_DEV
from benchmarks.extraction_quality import load_corpus, overlap
from benchmarks.site import script_rendered
from factflow_assets.adapters import PermanentError
from factflow_assets.adapters.web_crawler import BrowserMissing, BrowserNotStarting, find_browser
from factflow_assets.demo.server import Resource
from factflow_assets.extraction.markdown_extraction import extract_markdown
from factflow_assets.fetching.network_policy import NetworkPolicy
from tests.adapter_harness import json_message, run_adapter
from tests.conftest import html_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_browser() is None and not services_required(), reason="no chromium on this machine (apt install chromium)"),
]
FAST = {"respect_robots": False, "backoff": 0.01, "retries": 0, "rate_limit": {"initial_rps": 100, "max_rps": 200}, "render_timeout": 20}


def shell(script: str, title: str = "Shell") -> Resource:
    return html_page(title, f"<div id='app'>Loading…</div><script>{script}</script>")


def crawl(url: str, config: dict | None = None, policy: NetworkPolicy | None = None):
    return run_adapter("web_crawler", json_message({"url": url}), {**FAST, **(config or {})}, policy=policy)


def test_a_script_rendered_article_is_stored_as_rendered_and_reads_as_its_text(site):
    """A real article served as a single-page app's shell: web_scraper stores "Loading…", the
    crawler stores the article, and its markdown scores against the gold text as the page does."""
    pages, gold = load_corpus(require_corpus(AEB_DEV))
    name = sorted(pages)[0]
    page, payload = script_rendered(pages[name])
    server = site({"/a": Resource(page), "/a.json": Resource(payload, "application/json")})

    (scraped,) = run_adapter("web_scraper", json_message({"url": server.url("/a")}), {"respect_robots": False})
    (rendered,) = crawl(server.url("/a"))

    assert overlap(extract_markdown(scraped.body).markdown, gold[name]) == (0.0, 0.0)
    precision, recall = overlap(extract_markdown(rendered.body).markdown, gold[name])
    assert 2 * precision * recall / (precision + recall) >= 0.9, (precision, recall)
    assert rendered.metadata["rendered"] is True and rendered.metadata["requests"] >= 1  # the JSON, and what the head loads
    assert rendered.metadata["status"] == 200 and rendered.metadata["final_url"] == server.url("/a")
    assert rendered.content_type == "text/html; charset=utf-8"


def test_requests_to_hosts_not_allowed_and_to_the_metadata_address_are_refused(site):
    script = (
        "fetch('/data').then(r => r.text()).then(t => { document.getElementById('app').textContent = t; });"
        "fetch('{{base_url}}'.replace('127.0.0.1', 'localhost') + '/other').catch(() => 0);"
        "fetch('http://169.254.169.254/latest/meta-data/').catch(() => 0);"
    )
    server = site({"/p": shell(script), "/data": Resource(b"the article text", "text/plain"), "/other": Resource(b"secret", "text/plain")})
    seeds_only = NetworkPolicy(frozenset({"127.0.0.1"}))
    (closed,) = crawl(server.url("/p"), policy=seeds_only)
    assert b"the article text" in closed.body
    assert closed.metadata["refused_requests"] == 2 and server.requests["/other"] == 0

    any_host = NetworkPolicy(frozenset(), ("*",))
    (open_,) = crawl(server.url("/p"), policy=any_host)
    assert open_.metadata["refused_requests"] == 1 and server.requests["/other"] == 1  # the metadata address, always


def test_images_fonts_and_media_are_not_fetched_and_what_fails_is_counted(site):
    body = "<img src='/pic.png'><script src='/missing.js'></script><script>document.title = 'ran';</script>"
    server = site({"/p": html_page("p", body), "/pic.png": Resource(b"png", "image/png")})
    (page,) = crawl(server.url("/p"))
    assert page.metadata["blocked_requests"] == 1 and server.requests["/pic.png"] == 0
    assert page.metadata["requests"] == 1  # the script that 404s was fetched (a 404 is an answer)
    assert b"<title>ran</title>" in page.body


def test_a_page_that_never_finishes_loading_fails_with_the_cause(site):
    server = site({"/p": html_page("p", "<script src='/never.js'></script>"), "/never.js": Resource(b"", "text/javascript", delay=15)})
    with pytest.raises(PermanentError, match=r"did not finish rendering within 2 s \(wait_until networkidle\)"):
        crawl(server.url("/p"), {"render_timeout": 2})


def test_a_page_that_is_not_html_is_stored_unrendered(site):
    server = site({"/doc.pdf": Resource(b"%PDF-1.4 ...", "application/pdf")})
    (document,) = crawl(server.url("/doc.pdf"))
    assert document.body == b"%PDF-1.4 ..." and document.metadata["rendered"] is False


def test_a_browser_killed_mid_page_fails_that_page_and_the_next_page_renders(site):
    server = site({
        "/slow": html_page("slow", "<script src='/slow.js'></script>"),
        "/slow.js": Resource(b"", "text/javascript", delay=8),
        "/next": shell("document.getElementById('app').textContent = 'rendered after a restart';"),
    })

    def kill_the_browser_once_it_waits() -> None:
        while server.requests["/slow.js"] == 0:
            time.sleep(0.05)
        for pid in browser_processes(os.getpid()):
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_browser_once_it_waits, daemon=True)
    killer.start()
    slow, following = run_adapter(
        "web_crawler", None, FAST, messages=[json_message({"url": server.url("/slow")}), json_message({"url": server.url("/next")})]
    )
    assert isinstance(slow, PermanentError) and "browser died" in str(slow), slow
    assert b"rendered after a restart" in following[0].body


def test_a_missing_browser_is_one_line_naming_the_package(site):
    server = site({"/p": html_page("p")})
    with pytest.raises(BrowserMissing, match="install the chromium package"):
        crawl(server.url("/p"), {"executable_path": "no-such-chromium"})


@pytest.mark.parametrize("script", ["sleep 600", "echo 'cannot open display' >&2; exit 1"])
def test_a_browser_that_does_not_start_fails_in_one_line_naming_it_within_the_launch_timeout(site, tmp_path, script):
    """Playwright waits 180 s by default and then raises a call log of 30 lines: the stage would
    sit at 0 done for minutes, then say it in a page of text."""
    fake = tmp_path / "stuck-chromium"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    server = site({"/p": html_page("p")})
    with pytest.raises(BrowserNotStarting) as raised:
        crawl(server.url("/p"), {"executable_path": str(fake), "launch_timeout": 2})
    message = str(raised.value)
    assert str(fake) in message and "\n" not in message and "\\n" not in message, message
    if script.startswith("sleep"):
        assert message.endswith("did not start within 2 s")  # the launch timeout, not Playwright's 180 s


def browser_processes(root: int) -> list[int]:
    """Chromium processes below `root` (through Playwright's driver)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(rest[1]), []).append(int(entry.name))
            names[int(entry.name)] = name
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            if "chrom" in names.get(child, ""):
                found.append(child)
    return found


def rendered_site(site, pages: int, delay: float = 0.0):
    """Script-rendered corpus articles behind a sitemap, each page's JSON answered after `delay`."""
    articles, _gold = load_corpus(require_corpus(AEB_DEV))
    routes = {}
    for index, article in zip(range(pages), articles.values()):
        page, payload = script_rendered(article)
        routes[f"/p{index}"] = Resource(page)
        routes[f"/p{index}.json"] = Resource(payload, "application/json", delay=delay)
    urls = "".join(f"<url><loc>{{{{base_url}}}}/p{i}</loc></url>" for i in range(pages))
    routes["/sitemap.xml"] = Resource(f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>".encode(), "application/xml")
    routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    return site(routes)


def shipped_rendered_pipeline(folder: Path) -> None:
    from factflow_assets.settings import SHIPPED_PIPELINES_DIR

    text = (SHIPPED_PIPELINES_DIR / "rendered_web_to_markdown.yaml").read_text()
    (folder / "rendered.yaml").write_text(text.replace("initial_rps: 5", "initial_rps: 50").replace("max_rps: 20", "max_rps: 100"))


def test_the_shipped_rendered_pipeline_turns_script_built_pages_into_markdown(site, pipelines, env, tmp_path):
    from tests.e2e_harness import as_json, rows

    server = rendered_site(site, pages=6)
    shipped_rendered_pipeline(tmp_path / "pipelines")
    report = as_json("execution", "start", "rendered", "--set", f"sitemap_url={server.url('/sitemap.xml')}")
    assert report["status"] == "completed", report
    db, store = env
    crawled = rows(db, report["execution_id"], "web_crawler")
    assert len(crawled) == 6 and all(r["status"] == "completed" and r["metadata"]["rendered"] for r in crawled)
    markdown = rows(db, report["execution_id"], "html_to_markdown")
    assert len(markdown) == 6 and all(r["status"] == "completed" for r in markdown), [(r["status"], r["error_message"]) for r in markdown]
    assert all(r["metadata"]["words"] > 100 for r in markdown)  # the articles, not "Loading…"


def test_no_chromium_outlives_a_killed_run(site, pipelines, env, tmp_path):
    import subprocess
    import sys

    from factflow_assets.settings import PROJECT_ROOT
    from tests.e2e_harness import wait_for

    server = rendered_site(site, pages=8, delay=5.0)
    shipped_rendered_pipeline(tmp_path / "pipelines")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "execution", "start", "rendered", "--set", f"sitemap_url={server.url('/sitemap.xml')}"],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(lambda: any(server.requests[f"/p{i}.json"] for i in range(8)), what="a page rendering", process=process)
        browsers = browser_processes(process.pid)
        assert browsers
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    wait_for(lambda: not [pid for pid in browsers if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"], timeout=20, what="the browser to go")


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2]


def test_a_page_whose_script_sends_the_browser_where_nothing_answers_fails_with_that_cause(site):
    """Chromium's "This site can't be reached" page is not the page's content: a page that sends
    the browser somewhere that cannot be fetched (here: to https on a server speaking http) fails,
    naming where it went; one sent to a page that answers is read there."""
    upgrade = "if (location.protocol !== 'https:') { location.href = location.href.replace(/^http:/, 'https:'); }"
    elsewhere = "if (location.pathname === '/moved') { location.href = '/here'; }"
    server = site({"/up": shell(upgrade), "/moved": shell(elsewhere), "/here": html_page("Here", "<main><h1>Here</h1><p>Arrived.</p></main>")})
    with pytest.raises(PermanentError) as failed:
        crawl(server.url("/up"))
    sent_to = server.url("/up").replace("http:", "https:")
    assert str(failed.value) == f"{server.url('/up')} could not be rendered: its script sent the browser to {sent_to}, which could not be fetched"
    (moved,) = crawl(server.url("/moved"))
    assert b"Arrived." in moved.body and moved.metadata["final_url"] == server.url("/here")
