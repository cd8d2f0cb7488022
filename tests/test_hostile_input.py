"""Property tests over what a stranger controls (a pipeline YAML, a sitemap's bytes), and secrets in logs.

The validator must answer any text with findings or a pipeline, the sitemap parser any bytes with
a document or a SitemapFormatError: never another exception (a traceback for the operator).
"""

import gzip
import io
import logging

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factflow_assets.config import validate_text
from factflow_assets.fetching.sitemap_documents import (
    SitemapDocument,
    SitemapFormatError,
    parse_sitemap,
)
from resources.masking import MaskingLogRecord, install_log_masking, mask_text, mask_uri

VALID = {
    "version": 1,
    "routes": [
        {"name": "scrape", "concurrency": 4, "adapters": [{"type": "sitemap_parser", "config": {"max_urls": 10}}, {"type": "url_expander"}]},
        {"name": "md", "input": {"route": "scrape"}, "adapters": [{"type": "html_to_markdown"}, {"type": "smart_segmenter", "config": {"max_tokens": 200}}]},
    ],
    "network": {"allow_hosts": ["*.example.com"]},
    "init_message": {"route": "scrape", "payload": {"sitemap_url": "https://example.com/sitemap.xml"}},
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def answers(text: str) -> None:
    result = validate_text(text, "p")
    assert result.valid or result.errors, "neither a pipeline nor a finding"
    for finding in result.errors:
        assert finding.code and finding.message


@PROPERTY
@given(st.text(max_size=400))
def test_any_text_gets_findings_or_a_pipeline(text):
    answers(text)


@PROPERTY
@given(values)
def test_any_yaml_document_gets_findings_or_a_pipeline(document):
    answers(yaml.safe_dump(document))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


PATHS = list(_paths(VALID))[1:]


@PROPERTY
@given(st.sampled_from(PATHS), values)
def test_a_valid_pipeline_with_any_field_replaced_gets_findings_or_a_pipeline(path, value):
    import copy

    document = copy.deepcopy(VALID)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    answers(yaml.safe_dump(document))


def parses_or_refuses(data: bytes) -> None:
    try:
        document = parse_sitemap(data, "http://x/", max_bytes=1024 * 1024)
    except SitemapFormatError:
        return
    assert isinstance(document, SitemapDocument)
    assert all(url.startswith(("http://", "https://")) for url in document.urls + document.sitemaps)


XML_PIECES = st.sampled_from([
    "<urlset>", "</urlset>", "<sitemapindex>", "</sitemapindex>", "<url>", "</url>", "<loc>", "</loc>", "<sitemap>",
    "</sitemap>", "http://x/a", "/rel", "javascript:alert(1)", "&amp;", "&lol;", "<![CDATA[http://x/c]]>", "<?xml version='1.0'?>",
    "<!DOCTYPE urlset [<!ENTITY lol 'lol'>]>", "<!ENTITY x SYSTEM 'file:///etc/passwd'>", "<feed>", "<entry><link href='http://x/e'/></entry>",
    "<rss><item><link>http://x/i</link></item>", "\x00", "\ufeff", "<!--", "-->", " ", "\n", "é", "<a:url xmlns:a='urn:x'>",
])


@PROPERTY
@given(st.binary(max_size=600))
def test_any_bytes_give_a_document_or_a_format_error(data):
    parses_or_refuses(data)
    parses_or_refuses(gzip.compress(data))


@PROPERTY
@given(st.lists(XML_PIECES, max_size=40))
def test_any_arrangement_of_sitemap_pieces_gives_a_document_or_a_format_error(pieces):
    parses_or_refuses("".join(pieces).encode("utf-8", errors="surrogatepass"))


def test_uris_in_text_lose_their_secrets():
    text = "cannot reach postgresql://factflow:hunter2@db:5432/ff (and s3://bucket/x?token=abc&part=1) at 'http://u:p@h/'"
    masked = mask_text(text)
    assert "hunter2" not in masked and "abc" not in masked and ":p@" not in masked
    assert "postgresql://factflow:***@db:5432/ff" in masked and "part=1" in masked and "http://u:***@h/" in masked
    assert mask_text("nothing secret: mail a@b.example, ratio 3:4") == "nothing secret: mail a@b.example, ratio 3:4"
    # malformed URLs (no `//`) still carry credentials: whatever reads `user:secret@host` is masked
    assert mask_text("bad URL postgresql+psycopg2:factflow:hunter2@db/ff") == "bad URL postgresql+psycopg2:***@db/ff"
    assert mask_uri("factflow:hunter2@db:5432/ff") == "factflow:***@db:5432/ff"


def test_health_debug_never_shows_the_password_of_a_malformed_database_url(factflow_home, monkeypatch):
    import json

    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("FACTFLOW_DATABASE_URL", "postgresql+psycopg2:factflow:hunter2@127.0.0.1/ff")
    for args in (["system", "health", "--debug"], ["system", "health", "--debug", "--output", "json"]):
        result = CliRunner().invoke(cli, args)
        assert "hunter2" not in result.output and result.exit_code == 2
    report = json.loads(CliRunner().invoke(cli, ["system", "health", "--output", "json"]).stdout)
    assert "hunter2" not in json.dumps(report)


def test_every_log_line_masks_uris_whoever_logs_it():
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        install_log_masking()
        install_log_masking()  # idempotent
        assert logging.getLogRecordFactory() is MaskingLogRecord
        logger.warning("connecting to %s", "postgresql://u:s3cret@db/x")
        logger.error("failed: postgresql://u:s3cret@db/x is down")
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(previous)
    assert "s3cret" not in stream.getvalue() and stream.getvalue().count("u:***@db") == 2


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Nine levels of nine aliases: 9**9 nodes once expanded, a few hundred bytes written."""
    lines = ["a: &a [" + ", ".join(["x"] * width) + "]"]
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * width) + "]")
    return "version: 1\n" + "\n".join(lines) + "\nroutes: [{name: r, adapters: [{type: url_expander}]}]\ninit_message: {route: r}\n"


def test_an_alias_bomb_is_refused_without_being_expanded():
    result = validate_text(alias_bomb(), "bomb")
    assert [f.code for f in result.findings] == ["E006"] and not result.valid
    assert validate_text("version: 1\nloop: &l [*l]\n", "loop").findings[0].code == "E006"  # a node inside itself
    few = (
        "version: 1\nroutes:\n  - {name: r, error_handling: &c {retries: 1}, adapters: [{type: url_expander}]}\n"
        "  - {name: s, input: {route: r}, error_handling: *c, adapters: [{type: url_expander}]}\ninit_message: {route: r}\n"
    )
    assert validate_text(few, "few").valid  # aliases as people use them are fine


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path):
    from factflow_assets.config import validate_file
    from factflow_assets.config.validate import MAX_FILE_BYTES

    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n# " + "x" * MAX_FILE_BYTES + "\n")
    assert [f.code for f in validate_file(big).findings] == ["E005"]


def test_a_bad_file_in_the_pipelines_folder_does_not_hold_up_the_others(tmp_path):
    from factflow_assets.config import validate_directory
    from tests.conftest import TINY_PIPELINE

    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    (tmp_path / "good.yaml").write_text(TINY_PIPELINE)
    results = {r.source.rsplit("/", 1)[1]: r for r in validate_directory(tmp_path)}
    assert results["good.yaml"].valid and results["bomb.yaml"].errors[0].code == "E006"


def test_credential_parameters_of_every_common_name_are_masked():
    from resources.masking import mask_uri

    for name in ("sslpassword", "passwd", "api_key", "access_token"):
        assert "s3cr3t" not in mask_uri(f"postgresql://u@db/ff?{name}=s3cr3t&sslmode=require"), name
    assert mask_uri("postgresql://u@db/ff?sslmode=require") == "postgresql://u@db/ff?sslmode=require"


@pytest.mark.slow
def test_a_password_in_a_set_url_is_masked_in_json_sidecars_and_rows(pipelines, env):
    import json

    from e2e_harness import as_json, rows

    from factflow_assets.demo.server import Resource, SiteServer

    db, store = env
    page = b"<html><head><title>P</title></head><body><main><h1>P</h1><p>" + b"Words of the page. " * 20 + b"</p></main></body></html>"
    routes = {
        "/sitemap.xml": Resource(
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{{base_url}}/p</loc></url></urlset>', "application/xml"
        ),
        "/p": Resource(page),
    }
    with SiteServer(routes) as site:
        secret_url = site.url("/sitemap.xml").replace("http://", "http://reader:hunter2pw@")
        execution = as_json("execution", "start", "site_md", "--set", f"sitemap_url={secret_url}")
    assert execution["status"] == "completed"
    shown = [
        json.dumps(execution),
        json.dumps(as_json("execution", "get", execution["id"])),
        json.dumps(as_json("execution", "list")),
        json.dumps(rows(db, execution["id"]), default=str),
        *(json.dumps(store.metadata(o.key)) for o in store.objects(f"executions/{execution['id']}/")),
    ]
    assert [text for text in shown if "hunter2pw" in text] == []
    assert "reader:***@" in shown[1]
