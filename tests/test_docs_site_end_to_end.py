"""A real documentation site through the shipped pipeline, end to end.

The 22 pages of MkDocs' own documentation (../shared/corpora/docs-dev/mkdocs, BSD-2-Clause) are
served by a local site with a sitemap, and `web_to_markdown` runs over it as a user runs it. The
markdown's links into the site lead to pages of the site (or exactly where the page's own link
led, when the site itself links nowhere), no segment is over its bound or leaves a fence open,
and `execution get` carries what the markdown kept of the pages' structure.
"""

from __future__ import annotations

import gzip
import json
import re
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import pytest
from click.testing import CliRunner
from conftest import require_corpus

from benchmarks.corpora import CORPORA
from cli.main import cli
from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.settings import Settings
from resources.storage import ObjectStore

pytestmark = pytest.mark.slow

_LINK = re.compile(r"(?<!!)\[(?:\\.|[^\]\\])*\]\((?P<target>[^)\s]+)")


def _site(corpus) -> tuple[dict[str, Resource], dict[str, str]]:
    manifest = json.loads((corpus / "manifest.json").read_text())
    pages = {"/" + path: gzip.decompress((corpus / "mkdocs" / "html" / f"{path}.gz").read_bytes()) for path in manifest["mkdocs"]["pages"]}
    routes = {path: Resource(body) for path, body in pages.items()}
    urls = "".join(f"<url><loc>{{{{base_url}}}}{path}</loc></url>" for path in pages)
    routes["/sitemap.xml"] = Resource(
        f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode(),
        "application/xml",
    )
    return routes, {path: body.decode("utf-8") for path, body in pages.items()}


def test_a_documentation_site_comes_out_with_working_links_and_bounded_segments(factflow_home):
    corpus = require_corpus(CORPORA / "docs-dev")
    routes, pages = _site(corpus)
    with SiteServer(routes) as site:
        result = CliRunner().invoke(
            cli, ["execution", "start", "web_to_markdown", "--set", f"sitemap_url={site.url('/sitemap.xml')}", "--output", "json"]
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        base_url = site.base_url
        host = urlsplit(base_url).netloc
        own_targets = {
            path: {urljoin(site.url(path), a.get("href").strip()) for a in lxml.html.document_fromstring(html).xpath("//a[@href]")}
            for path, html in pages.items()
        }

    settings = Settings.from_env()
    store = ObjectStore(settings.storage_uri, settings.s3_endpoint_url)
    execution = report["execution_id"]
    markdown_keys = [o.key for o in store.objects(f"executions/{execution}/markdown_processor/html_to_markdown/")]
    assert len(markdown_keys) == 19  # 22 pages, three of them "Redirecting..." stubs with nothing to say
    internal = resolved = 0
    for key in markdown_keys:
        sidecar = store.metadata(key)
        path = urlsplit(sidecar["url"]).path
        for match in _LINK.finditer(store.get(key).decode()):
            target = match.group("target")
            if urlsplit(target).netloc != host:
                continue
            internal += 1
            if urldefrag(target)[0][len(base_url) :] in pages:
                resolved += 1
            else:  # the site links nowhere here itself: the markdown says exactly what the page said
                assert target in own_targets[path], (path, target)
    assert internal > 100 and resolved / internal > 0.5, (internal, resolved)

    segments = [o.key for o in store.objects(f"executions/{execution}/markdown_processor/smart_segmenter/")]
    assert segments
    for key in segments:
        sidecar = store.metadata(key)
        text = store.get(key).decode()
        assert sidecar["tokens"] <= 512
        assert sum(1 for line in text.split("\n") if line.lstrip().startswith(("```", "~~~"))) % 2 == 0, key

    got = CliRunner().invoke(cli, ["execution", "get", execution, "--output", "json"])
    (structure,) = json.loads(got.stdout)["structure"]
    assert structure["stage"] == "markdown_processor/html_to_markdown" and structure["pages"] == 19
    assert structure["kinds"]["code_blocks"]["region"] == structure["kinds"]["code_blocks"]["kept"] > 100
    assert structure["pages_with_losses"] == 0
