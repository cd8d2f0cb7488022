"""Incremental executions (`execution start --since`): the site is asked only about what changed,
the rest is carried over from the baseline, and `execution diff` says what changed."""

from __future__ import annotations

import pytest

from factflow_assets.demo.server import Request, Resource
from resources.storage import stage_prefix
from tests.conftest import html_page
from tests.e2e_harness import as_json, rows, run

pytestmark = pytest.mark.slow

ARTICLE = (
    "<article><h1>{title}</h1>" + "".join(f"<p>Paragraph {i} of {{title}} says something worth keeping about pumps.</p>" for i in range(12)) + "</article>"
)


def conditional(title: str, etag: str, seen: list[dict]) -> callable:
    """A page with an ETag that answers 304 to a request naming it; records each request's headers."""

    def answer(request: Request) -> Resource:
        seen.append(request.headers)
        if request.headers.get("If-None-Match") == etag:
            return Resource(b"", status=304, headers={"ETag": etag})
        page = html_page(title, ARTICLE.format(title=title))
        return Resource(page.body, headers={"ETag": etag, "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"})

    return answer


def sitemap(paths: list[str]) -> Resource:
    urls = "".join(f"<url><loc>{{{{base_url}}}}{p}</loc></url>" for p in paths)
    return Resource(f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>".encode(), "application/xml")


@pytest.mark.backends
def test_a_recrawl_asks_only_what_changed_carries_the_rest_and_diff_says_what_changed(site, pipelines, env):
    db, store = env
    etagged: list[dict] = []
    routes = {
        "/etag": conditional("Tagged", '"v1"', etagged),
        "/same": html_page("Same", ARTICLE.format(title="Same")),
        "/edited": html_page("Edited", ARTICLE.format(title="Edited")),
        "/gone": html_page("Gone", ARTICLE.format(title="Gone")),
    }
    server = site(routes)
    server.routes["/sitemap.xml"] = sitemap(["/etag", "/same", "/edited", "/gone"])
    sitemap_url = server.url("/sitemap.xml")
    first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}", "--tag", "first")
    assert first["status"] == "completed"

    server.routes["/edited"] = html_page("Edited", ARTICLE.format(title="Edited again"))
    server.routes["/new"] = html_page("New", ARTICLE.format(title="New"))
    server.routes["/sitemap.xml"] = sitemap(["/etag", "/same", "/edited", "/new"])
    second = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}", "--since", "latest", "--tag", "second")
    assert second["status"] == "completed"
    assert as_json("execution", "get", "second")["origin"]["since"] == first["execution_id"]

    # the conditional request was sent and answered 304
    assert etagged[-1].get("If-None-Match") == '"v1"' and etagged[-1].get("If-Modified-Since") == "Mon, 02 Nov 2026 10:00:00 GMT"
    scraped = {r["metadata"]["url"].rsplit("/", 1)[1]: r for r in rows(db, second["execution_id"], "web_scraper")}
    assert {page: r["status"] for page, r in scraped.items()} == {"etag": "unchanged", "same": "unchanged", "edited": "completed", "new": "completed"}
    assert scraped["etag"]["metadata"]["unchanged"] == "304 Not Modified"

    # only what changed was extracted again; the rest carried over, byte for byte
    markdown = {r["metadata"]["url"].rsplit("/", 1)[1]: r["status"] for r in rows(db, second["execution_id"], "html_to_markdown")}
    assert markdown == {"etag": "unchanged", "same": "unchanged", "edited": "completed", "new": "completed"}
    for stage in ("web_scraper", "html_to_markdown", "smart_segmenter"):
        route = "scrape" if stage == "web_scraper" else "markdown"
        before = {k.rsplit("/", 1)[1]: store.metadata(k)["sha256"] for k in store.keys(stage_prefix(first["execution_id"], route, stage))}
        after = {k.rsplit("/", 1)[1]: store.metadata(k)["sha256"] for k in store.keys(stage_prefix(second["execution_id"], route, stage))}
        carried = {m: h for m, h in after.items() if m in before and before[m] == h}
        assert len(carried) >= 2, stage  # the two unchanged pages' objects, identical

    # the diff an indexer reads
    diff = as_json("execution", "diff", "first", "second")
    assert sorted(p["url"].rsplit("/", 1)[1] for p in diff["changed"]) == ["edited"]
    assert sorted(p["url"].rsplit("/", 1)[1] for p in diff["added"]) == ["new"]
    assert sorted(p["url"].rsplit("/", 1)[1] for p in diff["removed"]) == ["gone"]
    assert sorted(p["url"].rsplit("/", 1)[1] for p in diff["unchanged"]) == ["etag", "same"]
    assert diff["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 2}
    only = as_json("execution", "diff", "first", "second", "--only", "changed,added")
    assert set(only) >= {"changed", "added"} and "unchanged" not in only and "removed" not in only

    table = run("execution", "diff", "first", "second")
    assert table.exit_code == 0 and "1 changed, 1 added, 1 removed, 2 unchanged" in table.stdout and "/edited" in table.stdout
    bad = run("execution", "diff", "first", "second", "--only", "moved")
    assert bad.exit_code == 2 and "moved is not one of" in bad.stderr

    # a replay redoes its stages, even with the baseline there to carry from
    in_place = as_json("execution", "replay", "second", "--from-stage", "web_content_storage")
    assert in_place["status"] == "completed"
    assert {r["status"] for r in rows(db, second["execution_id"], "html_to_markdown") if not r["superseded"]} == {"completed"}

    # the incremental execution stands alone: the baseline can go
    as_json("execution", "delete", "first", "--yes")
    replayed = as_json("execution", "replay", "second", "--from-stage", "web_content_storage")
    assert replayed["status"] == "completed"


def test_since_naming_an_unknown_a_running_or_another_pipelines_execution_is_one_line_and_creates_nothing(site, pipelines, env):
    from factflow_assets.config import load_pipeline
    from factflow_assets.engine.executions import create_execution
    from factflow_assets.settings import Settings

    db, _store = env
    folder = Settings.from_env().pipelines_dir
    create_execution(db, load_pipeline(folder, "remark"), tag="other", status="completed")
    create_execution(db, load_pipeline(folder, "site_md"), tag="busy", status="running")
    before = len(db.executions.recent(limit=100))
    for since, says in (("nope", "no execution with id or tag 'nope'"), ("other", "is of pipeline remark, not site_md"), ("busy", "is running")):
        result = run("execution", "start", "site_md", "--since", since)
        assert result.exit_code == 1 and says in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert len(db.executions.recent(limit=100)) == before

    empty = site({"/sitemap.xml": sitemap([])})
    result = run("execution", "start", "site_md", "--since", "latest", "--set", f"sitemap_url={empty.url('/sitemap.xml')}")
    assert "no completed execution of site_md with this init payload yet: a full crawl" in result.stderr


def test_a_recrawl_of_an_unchanged_site_says_so_in_dagster(site, pipelines, env):
    """Every message unchanged, counted in the materialisation; every stage's data version the
    same as the baseline's, which is how the UI shows that a crawl changed nothing."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    server = site({f"/p{i}": html_page(f"P{i}", ARTICLE.format(title=f"P{i}")) for i in range(3)})
    server.routes["/sitemap.xml"] = sitemap([f"/p{i}" for i in range(3)])
    sitemap_url = server.url("/sitemap.xml")
    first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}")
    second = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}", "--since", first["execution_id"])
    assert second["status"] == "completed"

    instance = DagsterInstance.get()
    key = AssetKey(["site_md", "markdown", "html_to_markdown"])

    def materialization(execution_id: str):
        records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key, asset_partitions=[execution_id]), limit=1).records
        return records[0].asset_materialization

    before, after = materialization(first["execution_id"]), materialization(second["execution_id"])
    assert after.metadata["messages_unchanged"].value == 3 and before.metadata["messages_unchanged"].value == 0
    assert after.tags["dagster/data_version"] == before.tags["dagster/data_version"]

    # the console shows the carried-over work in its own column, not zeros everywhere
    stages = {s["stage"]: s for s in second["stages"]}
    assert stages["html_to_markdown"]["unchanged"] == 3 and stages["html_to_markdown"]["completed"] == 0
    assert sum(s["unchanged"] for s in stages.values()) >= 3 * 4
    stats = {s["stage"]: s for s in as_json("lineage", "stats", "-e", second["execution_id"])}
    assert stats["web_scraper"]["unchanged"] == 3
    for shown in (run("execution", "get", second["execution_id"]).stdout, run("lineage", "stats", "-e", second["execution_id"]).stdout):
        assert "UNCHANGED" in shown


def test_with_trust_lastmod_a_page_the_sitemap_says_is_older_than_the_baseline_is_not_asked_for(site, pipelines, env, tmp_path):
    from tests.e2e_harness import PIPELINE

    db, _store = env
    text = PIPELINE.format(max_tokens=512, content_types="[text/html]").replace("respect_robots: false", "respect_robots: false\n          trust_lastmod: true")
    (tmp_path / "pipelines" / "lastmod.yaml").write_text(text)
    server = site({"/old": html_page("Old", ARTICLE.format(title="Old")), "/fresh": html_page("Fresh", ARTICLE.format(title="Fresh"))})

    def listing(fresh_lastmod: str) -> Resource:
        entries = f"<url><loc>{{{{base_url}}}}/old</loc><lastmod>2001-01-01</lastmod></url><url><loc>{{{{base_url}}}}/fresh</loc><lastmod>{fresh_lastmod}</lastmod></url>"  # noqa: E501
        return Resource(f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</urlset>".encode(), "application/xml")

    server.routes["/sitemap.xml"] = listing("2001-01-01")
    sitemap_url = server.url("/sitemap.xml")
    first = as_json("execution", "start", "lastmod", "--set", f"sitemap_url={sitemap_url}")
    server.routes["/sitemap.xml"] = listing("2999-01-01T00:00:00Z")  # says it changed after any fetch
    second = as_json("execution", "start", "lastmod", "--set", f"sitemap_url={sitemap_url}", "--since", first["execution_id"])
    assert second["status"] == "completed"
    assert server.requests["/old"] == 1 and server.requests["/fresh"] == 2
    scraped = {r["metadata"]["url"].rsplit("/", 1)[1]: r for r in rows(db, second["execution_id"], "web_scraper")}
    assert scraped["old"]["status"] == "unchanged" and "sitemap lastmod 2001-01-01 is older" in scraped["old"]["metadata"]["unchanged"]
    assert scraped["fresh"]["status"] == "unchanged"  # asked, and the same bytes came back


def test_a_baseline_that_lost_objects_gets_those_pages_done_in_full_with_one_warning(site, pipelines, env, caplog):
    db, store = env
    server = site({f"/p{i}": html_page(f"P{i}", ARTICLE.format(title=f"P{i}")) for i in range(3)})
    server.routes["/sitemap.xml"] = sitemap([f"/p{i}" for i in range(3)])
    sitemap_url = server.url("/sitemap.xml")
    first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}")
    lost = store.keys(stage_prefix(first["execution_id"], "markdown", "html_to_markdown"))[0]
    store.delete_keys([lost])
    result = run("execution", "start", "site_md", "--set", f"sitemap_url={sitemap_url}", "--since", first["execution_id"], "--output", "json")
    assert result.exit_code == 0, result.output
    warnings = [record.getMessage() for record in caplog.records if "lost objects" in record.getMessage()]
    assert len(warnings) == 1 and "markdown/html_to_markdown: 1 message(s)" in warnings[0], warnings
    second = result.stdout and __import__("json").loads(result.stdout)["execution_id"]
    statuses = sorted(r["status"] for r in rows(db, second, "html_to_markdown"))
    assert statuses == ["completed", "unchanged", "unchanged"]
