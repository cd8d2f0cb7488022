"""The hand-off to the user's index: the dataset asset, `factflow export`, the changefeed.

Two crawls of a small site, between which one page stays, one changes, one goes and one comes:
each execution's run writes its dataset (Parquet, with its materialisation in Dagster), and
applying the first export and then the changefeed from it gives the second export.
"""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey
from e2e_harness import as_json, run

from factflow_assets.dataset.changes import PROVENANCE
from factflow_assets.dataset.schema import SEGMENT_SCHEMA, page_id
from factflow_assets.demo.server import Resource, SiteServer
from factflow_assets.operations.instance import dagster_instance
from factflow_assets.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.backends]

PARAGRAPH = "The harbour wall protects the moorings from the winter swell and needs repair every spring. "


def page(title: str, sections: int, words: str = "") -> Resource:
    """A page of its own text (every sentence names the page and its part): no two are alike."""
    body = "".join(
        f"<h2>Part {i}</h2><p>{' '.join(f'{words}{title} part {i} sentence {n}: {PARAGRAPH}' for n in range(6))}</p>" for i in range(sections)
    )
    return Resource(f"<!DOCTYPE html><html lang='en'><head><title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>".encode())


def sitemap(paths: list[str]) -> Resource:
    urls = "".join(f"<url><loc>{{{{base_url}}}}{path}</loc></url>" for path in paths)
    return Resource(f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'.encode(), "application/xml")


def export(execution: str, what: str, *extra: str) -> list[dict]:
    result = run("export", execution, "--what", what, *extra)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def held(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in PROVENANCE}


def test_each_run_writes_the_dataset_and_the_changefeed_takes_one_export_to_the_next(pipelines, env):
    pipelines(max_tokens=96)
    with SiteServer({"/sitemap.xml": sitemap(["/a", "/b", "/c"]), "/a": page("Alpha", 2), "/b": page("Beta", 2), "/c": page("Gamma", 3)}) as site:
        before = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}", "--tag", "before")
        site.routes.update({"/sitemap.xml": sitemap(["/a", "/b", "/d"]), "/b": page("Beta", 2, "Rebuilt in granite. "), "/d": page("Delta", 1)})
        after = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}", "--tag", "after")
        base = site.base_url
    assert before["status"] == after["status"] == "completed"

    # the run wrote the dataset, and Dagster shows its materialisation with rows, URI and a data version
    instance = dagster_instance(Settings.from_env())
    (event,) = instance.fetch_materializations(AssetKey(["site_md", "dataset"]), limit=10).records[:1]
    materialization = event.asset_materialization
    assert materialization.partition == after["id"]
    assert materialization.metadata["pages_rows"].value == 3 and materialization.metadata["segments_rows"].value > 3
    assert materialization.metadata["segments_uri"].value.endswith(f"executions/{after['id']}/dataset/segments.parquet")

    for what in ("pages", "segments"):
        first, second = export("before", what), export("after", what)
        feed = export("after", what, "--changes-since", "before")
        index = {row["id"]: row for row in first}
        for record in feed:
            if record.pop("op") == "upsert":
                index[record["id"]] = record
            else:
                del index[record["id"]]
        assert {key: held(row) for key, row in index.items()} == {row["id"]: held(row) for row in second}, what

    pages_feed = export("after", "pages", "--changes-since", "before")
    ops = {(row["op"], row["url"] or row["id"]) for row in pages_feed}
    assert ops == {("upsert", f"{base}/b"), ("upsert", f"{base}/d"), ("delete", page_id(f"{base}/c"))}  # /a: unchanged

    # Parquet to a file reads back as the JSON Lines did; the schema is the documented one
    db, store = env
    parquet = run("export", "after", "--format", "parquet", "--output", "-")
    table = pq.read_table(io.BytesIO(parquet.stdout_bytes))
    assert table.schema.equals(SEGMENT_SCHEMA, check_metadata=False) and table.to_pylist() == export("after", "segments")
    assert all(row["heading_path"][0] in ("Alpha", "Beta", "Delta") for row in table.to_pylist())
    csv = run("export", "after", "--what", "pages", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("id,url,final_url,canonical_url,title,language,text")


ARTICLE = " ".join(
    f"<p>Section {n} of the pump manual explains how the controller reads flow rate {n * 3} and pressure {n + 2} from its sensors "
    f"before it adjusts valve {n % 4} and writes a line to the log.</p>" for n in range(12)
)


GUIDE = " ".join(
    f"<p>Step {n} of the valve guide: loosen bolt {n + 4}, lift cover {n % 3} and clean seal {n * 7} with a dry cloth "
    f"before the gasket is fitted again.</p>" for n in range(12)
)


def shell(title: str, body: str, head: str = "", chrome: str = "") -> Resource:
    return Resource(
        f"<!DOCTYPE html><html lang='en'><head><title>{title}</title>{head}</head><body>{chrome}<main><h1>Pump manual</h1>{body}</main></body></html>".encode()
    )


def test_duplicate_pages_are_found_recorded_and_left_out_of_the_dataset(pipelines, env):
    """Each kind the issue names: a print view (a header line more), tracking-parameter and
    trailing-slash variants, a syndicated copy naming the original as canonical and one naming
    nothing in other chrome; the distinct pages are kept."""
    db, _store = env
    print_view = shell("Pump manual (print)", "<p>Printed from docs.example.com on 1 March 2026.</p>" + ARTICLE)
    routes = {
        "/manual": shell("Pump manual", ARTICLE),
        "/manual?utm_source=newsletter": shell("Pump manual", ARTICLE),
        "/manual/print": print_view,
        "/guide/": shell("Valve guide", GUIDE),
        "/guide": shell("Valve guide", GUIDE),
        "/partner/manual": shell("Partner copy", ARTICLE, head="<link rel='canonical' href='/manual'>", chrome="<nav>Partner site</nav>"),
        "/mirror/manual": shell("Mirror", ARTICLE, chrome="<div class='banner'>Mirror of the pump manual</div>"),
        "/valves": page("Valves", 3),
        "/sensors": page("Sensors", 3),
    }
    paths = list(routes)
    with SiteServer({"/sitemap.xml": sitemap(paths), **routes}) as site:
        done = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap.xml')}", "--tag", "dups")
        base = site.base_url
    assert done["status"] == "completed"

    rows = [r for r in db.lineage_queries.rows(done["id"], stage="dataset", limit=100) if r["status"] == "skipped"]
    found = {r["metadata"]["url"][len(base):]: (r["metadata"]["duplicate_of"][len(base):], r["metadata"]["duplicate_kind"]) for r in rows}
    assert found == {
        "/manual?utm_source=newsletter": ("/manual", "exact"),
        "/manual/print": ("/manual", "near"),
        "/guide": ("/guide/", "exact"),
        "/partner/manual": ("/manual", "canonical"),
        "/mirror/manual": ("/manual", "exact"),  # its banner is boilerplate: the markdown is the manual's, byte for byte
    }, found
    kept = {row["url"][len(base):] for row in export("dups", "pages")}
    assert kept == {"/manual", "/guide/", "/valves", "/sensors"}
    everything = export("dups", "pages", "--include-duplicates")
    assert len(everything) == len(paths) and {row["duplicate_of"] for row in everything} - {None} == {page_id(f"{base}/manual"), page_id(f"{base}/guide/")}
    got = as_json("execution", "get", "dups")
    assert got["duplicates"] == 5


def test_a_run_process_loads_no_signature_library_until_two_signatures_are_compared():
    """datasketch imports scipy (~0.3 s): the code location's modules and a one-page dataset's
    duplicate pass must not load it, or every execution's fixed cost carries it."""
    from conftest import modules_loaded_after

    code = (
        "import factflow_assets.operations.launch\n"
        "from factflow_assets.dataset.duplicates import PageFacts, find_duplicates\n"
        "page = PageFacts('m1', 'http://x/a', 'http://x/a', None, 'h1', (0, ''), 80, list(range(128)))\n"
        "assert find_duplicates([page]) == {}"
    )
    assert modules_loaded_after(code, ("datasketch", "scipy")) == []
