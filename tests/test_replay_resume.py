"""Replay, resume and cancel, end to end (architecture §5–6): proven not to refetch or lose anything.

The local site counts requests per path, so "nothing was fetched again" is a number. A run killed
with SIGKILL in the middle of a stage, then resumed, must leave the same storage (keys and content
hashes) as a run nobody interrupted.
"""

import signal

import pytest
from e2e_harness import (
    alive,
    as_json,
    descendants,
    page_requests,
    path_of,
    rows,
    run,
    scraping_midway,
    stages,
    start_in_subprocess,
    storage_of,
    wait_for,
)

from factflow_assets.demo.site import demo_site, expected_pages

pytestmark = [pytest.mark.slow, pytest.mark.backends]
PAGES, BROKEN = expected_pages()

SCRAPE_ROUTE = ("sitemap_parser", "url_expander", "web_scraper")
REPLAYED = ("web_content_storage", "html_to_markdown", "smart_segmenter")


def test_a_replay_from_the_scraper_republishes_its_stored_pages_with_the_site_gone(pipelines, env):
    db, store = env
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
        before = storage_of(store, first["id"])
    fetched = site.total_requests()  # the site is stopped now: a request could not even be answered

    replay = as_json("execution", "replay", "t", "--from-stage", "web_scraper")
    assert site.total_requests() == fetched
    assert replay["status"] == "completed" and replay["id"] == first["id"]
    assert replay["stages"] == first["stages"]  # the same counts, stage by stage
    assert storage_of(store, first["id"]) == before  # the same keys and contents
    start_run = next(r["run_id"] for r in replay["runs"] if r["kind"] == "start")
    replay_run = next(r["run_id"] for r in replay["runs"] if r["kind"] == "replay")
    for key in before:
        written_by = store.metadata(f"executions/{first['id']}/{key}")["dagster_run_id"]
        stage = key.split("/")[1]
        assert written_by == (replay_run if stage in REPLAYED else start_run), key
    for stage in SCRAPE_ROUTE:  # the stage named and those upstream of it did not run
        assert {(r["dagster_run_id"], r["superseded"]) for r in rows(db, first["id"], stage)} == {(start_run, False)}
    for stage in REPLAYED:
        current = [r for r in rows(db, first["id"], stage) if not r["superseded"]]
        assert current and {r["dagster_run_id"] for r in current} == {replay_run}
    assert replay["replay"]["deleted_objects"] == 0  # every object was written again, over its old key
    assert replay["replay"]["superseded_rows"] == sum(r["superseded"] for s in REPLAYED for r in rows(db, first["id"], s)) > 0


def test_a_fixed_adapter_is_replayed_from_what_the_stage_before_it_stored(pipelines, env):
    db, store = env
    pipelines(content_types=("application/pdf",))  # misconfigured: every page is "not HTML"
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
        assert stages(first)["web_content_storage"]["skipped"] == PAGES and stages(first)["html_to_markdown"]["completed"] == 0
        fetched = site.total_requests()

        pipelines()  # the fix
        replay = as_json("execution", "replay", "t", "--from-stage", "web_scraper")
        assert site.total_requests() == fetched  # nothing reached the site

    assert replay["status"] == "completed" and replay["id"] == first["id"]
    for stage in REPLAYED:
        assert (stages(replay)[stage]["completed"], stages(replay)[stage]["skipped"]) == (PAGES, 0)
    assert stages(replay)["web_scraper"] == stages(first)["web_scraper"]  # upstream untouched
    new_hash = replay["config_hash"]
    assert new_hash != first["config_hash"] and replay["replay"]["previous_config_hash"] == first["config_hash"]

    history = rows(db, first["id"], "web_content_storage")
    superseded = [r for r in history if r["superseded"]]
    current = [r for r in history if not r["superseded"]]
    assert len(superseded) == PAGES and {(r["status"], r["config_hash"]) for r in superseded} == {("skipped", first["config_hash"])}
    assert len(current) == PAGES and {(r["status"], r["config_hash"]) for r in current} == {("completed", new_hash)}
    replay_run = next(r["run_id"] for r in replay["runs"] if r["kind"] == "replay")
    for key in storage_of(store, first["id"], "markdown/"):
        sidecar = store.metadata(f"executions/{first['id']}/{key}")
        assert (sidecar["config_hash"], sidecar["dagster_run_id"]) == (new_hash, replay_run)
    assert len(storage_of(store, first["id"], "markdown/html_to_markdown/")) == PAGES


def test_a_replay_leaves_no_stale_objects_and_keeps_history(pipelines, env):
    db, store = env
    pipelines(max_tokens=32)  # many small segments
    with demo_site() as site:
        first = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}")
        fetched = site.total_requests()
        small = storage_of(store, first["id"], "markdown/smart_segmenter/")
        markdown = storage_of(store, first["id"], "markdown/html_to_markdown/")
        pipelines(max_tokens=4096)  # one segment per page or close to it
        replay = as_json("execution", "replay", first["id"], "--from-stage", "markdown/html_to_markdown")
        assert site.total_requests() == fetched

    large = storage_of(store, first["id"], "markdown/smart_segmenter/")
    assert len(large) < len(small)  # the earlier segments that the replay did not rewrite are gone
    assert set(large) < set(small)  # the ones it did were written over their old keys
    current = [r for r in rows(db, first["id"], "smart_segmenter") if not r["superseded"]]
    assert {k for r in current for k in r["output_keys"]} == {f"executions/{first['id']}/{k}" for k in large}
    assert replay["replay"]["deleted_objects"] == len(small) - len(large) and replay["replay"]["superseded_rows"] == PAGES
    assert storage_of(store, first["id"], "markdown/html_to_markdown/") == markdown  # the stage named: untouched
    assert {r["superseded"] for r in rows(db, first["id"], "html_to_markdown")} == {False}
    listed = as_json("execution", "list")
    listed_first = next(e for e in listed if e["id"] == first["id"])
    assert listed_first["replays"] == {"in_place": 1, "into_routes": 0}
    # the duration is the first run's, not stretched by the replay; the replay is the last activity
    assert listed_first["duration_s"] == first["duration_s"] and listed_first["finished_at"] > listed_first["first_finished_at"]
    shown = run("execution", "get", first["id"])
    assert "replays" in shown.stdout and "markdown/html_to_markdown" in shown.stdout
    assert "(its first run)" in shown.stdout and "last activity" in shown.stdout
    assert "1 in place" in run("execution", "list").stdout
    configs = [c for c in as_json("config", "list") if first["id"] in c["executions"]]
    assert len(configs) == 2 and configs[0]["config_hash"] == replay["config_hash"]  # the replay's: used last
    assert "max_tokens: 4096" in as_json("config", "show", first["id"])["yaml"]
    assert "max_tokens: 32" in as_json("config", "show", configs[1]["config_hash"])["yaml"]

    page = next(r for r in rows(db, first["id"], "html_to_markdown"))
    chain = as_json("lineage", "chain", page["id"])["rows"]
    assert {r["superseded"] for r in chain if r["stage"] == "smart_segmenter"} == {True, False}  # before and after the replay
    tree = run("lineage", "chain", page["id"]).stdout
    assert tree.count("superseded") == sum(r["superseded"] for r in chain)
    live = as_json("lineage", "chain", page["id"], "--current")["rows"]
    assert live and not any(r["superseded"] for r in live)
    assert {r["id"] for r in live if r["depth"] > 0} == {r["id"] for r in chain if r["depth"] > 0 and not r["superseded"]}


def test_a_replay_into_a_route_makes_a_child_execution_reading_the_parents_objects(pipelines, env):
    db, store = env
    with demo_site() as site:
        parent = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "parent")
        fetched = site.total_requests()
        same = as_json("execution", "replay", "parent", "--from-stage", "web_content_storage", "--to-route", "markdown")
        other = as_json("execution", "replay", "parent", "--from-stage", "scrape/web_content_storage",
                        "--to-route", "plain_markdown", "--pipeline", "remark")
        assert site.total_requests() == fetched

    parent_pages = {r["id"] for r in rows(db, parent["id"], "web_content_storage")}
    for child, pipeline, route in ((same, "site_md", "markdown"), (other, "remark", "plain_markdown")):
        assert child["status"] == "completed" and child["parent_id"] == parent["id"] and child["pipeline"] == pipeline
        assert child["origin"] == {"kind": "replay", "parent": parent["id"], "from_stage": "scrape/web_content_storage", "to_route": route}
        first_stage = rows(db, child["id"], "html_to_markdown")
        assert len(first_stage) == PAGES and {r["status"] for r in first_stage} == {"completed"}
        assert {r["parent_lineage_id"] for r in first_stage} == parent_pages  # lineage crosses executions
        assert {r["stage"] for r in rows(db, child["id"])} <= {"html_to_markdown", "smart_segmenter", "dataset"}
    assert len(storage_of(store, same["id"], "markdown/smart_segmenter/")) >= PAGES
    same_md = storage_of(store, same["id"], "markdown/html_to_markdown/")
    assert same_md == storage_of(store, parent["id"], "markdown/html_to_markdown/")  # same code, same input
    plain = store.get(next(o.key for o in store.objects(f"executions/{other['id']}/plain_markdown/html_to_markdown/")))
    assert b"](http" not in plain  # the other pipeline's config ran: links kept as text

    got = as_json("execution", "get", "parent")
    assert set(got["children"]) == {same["id"], other["id"]} and len(got["replays"]) == 2
    listed = {e["id"]: e for e in as_json("execution", "list")}
    assert listed[same["id"]]["parent_id"] == parent["id"] and listed[same["id"]]["origin"]["kind"] == "replay"
    assert f"replay of {parent['id']}" in run("execution", "list").stdout
    assert listed[parent["id"]]["replays"] == {"in_place": 0, "into_routes": 2}
    assert "2 into a route" in run("execution", "list").stdout
    page = next(iter(parent_pages))
    tree = run("lineage", "chain", page).stdout  # the children's rows name their execution
    assert f"(execution {same['id']})" in tree and f"(execution {other['id']})" in tree and f"(execution {parent['id']})" not in tree


def test_replay_refuses_when_inputs_are_missing_and_changes_nothing(pipelines, env):
    db, store = env
    with demo_site() as site:
        done = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "t")
    prefix = f"executions/{done['id']}/scrape/web_content_storage/"
    victim = store.keys(prefix)[3]
    store.fs.rm_file(store.url(victim))  # one page is gone from storage (its sidecar stays)

    def snapshot():
        return storage_of(store, done["id"]), [(r["id"], r["superseded"], r["status"]) for r in rows(db, done["id"])]

    before = snapshot()
    refused = run("execution", "replay", "t", "--from-stage", "web_content_storage")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert f"1 of {PAGES} object(s) are missing under {prefix}" in refused.stderr and victim in refused.stderr
    refused_child = run("execution", "replay", "t", "--from-stage", "web_content_storage", "--to-route", "markdown")
    assert refused_child.exit_code == 1 and prefix in refused_child.stderr

    store.delete_prefix(prefix)
    empty = run("execution", "replay", "t", "--from-stage", "web_content_storage")
    assert empty.exit_code == 1 and f"nothing is stored under {prefix}" in empty.stderr
    assert snapshot()[1] == before[1] and as_json("execution", "list")[0]["id"] == done["id"]  # no child was made

    for args, words in [
        (("nope", "--from-stage", "html_to_markdown"), "no execution with id or tag 'nope'"),
        (("t", "--from-stage", "html_to_markdwn"), "has no stage 'html_to_markdwn' (stages: scrape/sitemap_parser"),
        (("t", "--from-stage", "markdown/nope"), "has no stage markdown/nope"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "nowhere"), "has no route 'nowhere'"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "nowhere", "--pipeline", "remark"), "runs no route 'nowhere'"),
        (("t", "--from-stage", "html_to_markdown", "--to-route", "x", "--pipeline", "absent"), "no pipeline 'absent'"),
        (("t", "--from-stage", "smart_segmenter"),
         "nothing is downstream of markdown/smart_segmenter, so a replay from it would run no stage; a replay re-runs the stages "
         "after the one named: to run markdown/smart_segmenter again, use --from-stage markdown/html_to_markdown"),
    ]:
        result = run("execution", "replay", *args)
        assert result.exit_code == 1 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert snapshot()[1] == before[1]


def test_a_killed_execution_resumes_to_exactly_the_storage_of_an_uninterrupted_run(pipelines, env):
    db, store = env
    with demo_site(latency=0.4) as site:
        sitemap = site.url("/sitemap_index.xml")
        clean = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}", "--tag", "clean")
        requests_clean = page_requests(site)

        process = start_in_subprocess(sitemap, "killed")
        try:
            wait_for(scraping_midway(db, "killed"), what="the scraper midway", process=process)
            helpers = descendants(process.pid)  # the forkserver and the extraction and segmenting workers
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert len(helpers) >= 3
        wait_for(lambda: not alive(helpers), timeout=15, what="the killed run's helper processes to die with it")
        interrupted = as_json("execution", "get", "killed")
        assert interrupted["status"] == "interrupted" and "is gone" in interrupted["error"]
        assert interrupted["runs"][0]["status"] == "FAILURE"  # Dagster no longer shows it running

        resumed = as_json("execution", "resume", "killed")
        requests_both = page_requests(site) - requests_clean

        # a completed execution with failed pages: resume tries exactly those again
        before_retry = page_requests(site)
        retried = as_json("execution", "resume", "killed")
        assert retried["status"] == "completed" and retried["runs"][0]["kind"] == "resume"
        assert sum((page_requests(site) - before_retry).values()) == BROKEN  # the broken pages, nothing else

    assert resumed["status"] == "completed"
    assert storage_of(store, resumed["id"]) == storage_of(store, clean["id"])  # same keys, same content
    assert {s["stage"]: (s["completed"], s["failed"]) for s in resumed["stages"]} == {
        s["stage"]: (s["completed"], s["failed"]) for s in clean["stages"]
    }
    # pages the killed run fetched were not fetched again; the ones in flight at the kill (and
    # the broken ones: a failed message is tried again) were
    killed_run = next(r["run_id"] for r in resumed["runs"] if r["kind"] == "start")
    finished_before = [r for r in rows(db, resumed["id"], "web_scraper") if r["dagster_run_id"] == killed_run and r["status"] == "completed"]
    assert finished_before and all(requests_both[path_of(r)] == 1 for r in finished_before)
    assert set(requests_both) == set(requests_clean)
    cut = [r for r in rows(db, resumed["id"]) if r["status"] == "cancelled"]
    assert cut and {r["error_class"] for r in cut} == {"RunInterrupted"}
    for row in cut:
        later = [r for r in rows(db, resumed["id"], row["stage"]) if r["message_id"] == row["message_id"] and r["status"] == "completed"]
        assert len(later) == 1 and later[0]["attempt"] == row["attempt"] + 1
    kinds = [r["kind"] for r in resumed["runs"]]
    assert kinds == ["resume", "start"]


def test_cancel_stops_gracefully_and_resume_finishes(pipelines, env):
    db, store = env
    with demo_site(latency=1.0) as site:  # slow enough that the cancel (seen within one 2 s heartbeat) lands mid-scrape
        sitemap = site.url("/sitemap_index.xml")
        process = start_in_subprocess(sitemap, "stopped")
        try:
            wait_for(scraping_midway(db, "stopped"), what="the scraper midway", process=process)
            cancelled = as_json("execution", "cancel", "stopped")
            assert process.wait(timeout=60) == 1
        finally:
            if process.poll() is None:
                process.kill()
        assert "Traceback" not in process.stderr.read()
        got = as_json("execution", "get", "stopped")
        assert cancelled["status"] == got["status"] == "cancelled" and got["runs"][0]["status"] == "CANCELED"
        record_rows = rows(db, got["id"])
        assert not [r for r in record_rows if r["status"] in ("pending", "cancelled")]  # in-flight messages finished
        scraped = [r for r in record_rows if r["stage"] == "web_scraper"]
        assert 3 <= len(scraped) < PAGES + BROKEN  # it stopped taking new pages
        fetched = {path_of(r) for r in scraped if r["status"] == "completed"}
        before = page_requests(site)

        # what a stage before the unfinished one stored is gone: the resume refuses, changing nothing
        expander = f"executions/{got['id']}/scrape/url_expander/"
        saved = [(key, store.get(key), store.metadata(key)) for key in store.keys(expander)]
        kept = {k: v for k, v in storage_of(store, got["id"]).items() if not k.startswith("scrape/url_expander/")}
        store.delete_prefix(expander)
        refused = run("execution", "resume", "stopped")
        assert refused.exit_code == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert f"cannot resume: what scrape/url_expander stored is missing: nothing is stored under {expander}" in refused.stderr
        assert storage_of(store, got["id"]) == kept and as_json("execution", "get", "stopped")["status"] == "cancelled"
        assert page_requests(site) == before
        for key, body, sidecar in saved:
            store.put(key, body, sidecar["content_type"], {k: v for k, v in sidecar.items() if k not in ("key", "size", "sha256", "content_type")})

        resumed = as_json("execution", "resume", "stopped")
        fetched_by_resume = page_requests(site) - before
        clean = as_json("execution", "start", "site_md", "--set", f"sitemap_url={sitemap}")

    assert resumed["status"] == "completed"
    assert not set(fetched_by_resume) & fetched  # pages fetched before the cancel are not fetched again
    assert sum(fetched_by_resume.values()) == PAGES + BROKEN - len(fetched)  # the rest once each
    assert storage_of(store, resumed["id"]) == storage_of(store, clean["id"])
    assert run("execution", "cancel", "stopped").exit_code == 1  # not running: nothing to cancel


def test_resume_takes_again_messages_a_dying_run_left_cancelled_after_its_stage_materialised(pipelines, env):
    """A run killed by its database (connections dropped) can close rows `cancelled` for pages it
    had in fact stored, while Dagster says the stage materialised: resume still sees them."""
    from sqlalchemy import update

    from resources.db_schema import lineage

    db, store = env
    with demo_site() as site:
        done = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}", "--tag", "cut")
        before = storage_of(store, done["id"])
        cut = [r for r in rows(db, done["id"], "html_to_markdown") if r["status"] == "completed"][:2]
        failed = [r["id"] for r in rows(db, done["id"]) if r["status"] == "failed"]
        with db.engine.begin() as conn:
            conn.execute(update(lineage).where(lineage.c.id.in_([r["id"] for r in cut])).values(status="cancelled"))
            # the broken links' failures out of the way, so that only the cancelled rows are left to resume
            conn.execute(update(lineage).where(lineage.c.id.in_(failed)).values(superseded=True))
        requests = page_requests(site)
        resumed = as_json("execution", "resume", "cut")
        assert page_requests(site) == requests  # the pages are stored: nothing is fetched
    assert resumed["status"] == "completed" and resumed["runs"][0]["kind"] == "resume"
    for row in cut:
        again = [r for r in rows(db, done["id"], "html_to_markdown") if r["message_id"] == row["message_id"] and not r["superseded"]]
        assert [(r["status"], r["attempt"]) for r in again] == [("completed", row["attempt"] + 1)]
    assert storage_of(store, done["id"]) == before
