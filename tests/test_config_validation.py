"""The pipeline validator: each finding code, with the YAML path and line of the bad field."""

import json
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from cli.main import cli
from factflow_assets.config import CODES, validate_directory, validate_file, validate_text
from factflow_assets.settings import PROJECT_ROOT

REPO_ROOT = Path(__file__).resolve().parent.parent

VALID = dedent(
    """\
    version: 1
    routes:
      - name: scrape
        adapters:
          - type: sitemap_parser
          - type: url_expander
    init_message:
      route: scrape
      payload: {sitemap_url: "http://127.0.0.1/sitemap.xml"}
    """
)


def findings(text: str, name: str = "p"):
    return [(f.code, f.path, f.line) for f in validate_text(dedent(text), name).findings]


def codes(text: str, name: str = "p"):
    return [code for code, _, _ in findings(text, name)]


def test_a_minimal_pipeline_is_valid_and_compiles_its_stages():
    result = validate_text(VALID, "p")
    assert result.valid and result.findings == []
    stages = result.pipeline.stages
    assert [str(s.ref) for s in stages] == ["scrape/sitemap_parser", "scrape/url_expander"]
    assert stages[0].upstream is None
    assert str(stages[1].upstream) == "scrape/sitemap_parser"
    assert stages[0].adapter_config.max_urls == 10_000  # the adapter's model filled its defaults


def test_the_shipped_pipelines_are_valid():
    for path in (REPO_ROOT / "pipelines").glob("*.yaml"):
        result = validate_file(path)
        assert result.valid, result.findings
        assert result.findings == []


def test_E001_yaml_syntax_error_gives_the_line():
    assert findings("version: 1\nroutes: [a,\n") == [("E001", "", 3)]


def test_E002_empty_document():
    assert codes("# nothing but a comment\n") == ["E002"]


def test_E003_unreadable_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("version: 1 # caf\xe9".encode("latin-1"))
    assert [f.code for f in validate_file(path).findings] == ["E003"]


def test_E007_a_document_nested_hundreds_deep_is_a_finding_not_a_crash(tmp_path):
    """1.2 KB of brackets used to exhaust Python's stack (RecursionError, no code, no JSON) and,
    in the pipelines directory, take the whole code location down."""
    flow = "version: 1\nroutes: " + "[" * 600 + "]" * 600 + "\n"
    block = "version: 1\nroutes:\n" + "".join("  " * i + "- a:\n" for i in range(1, 300))
    assert findings(flow) == [("E007", "", 2)]
    assert codes(block) == ["E007"]
    assert codes("version: 1\nroutes: " + "[" * 60 + "]" * 60 + "\n") != ["E007"]  # deep, but within the bound
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "deep.yaml").write_text(flow)
    (folder / "ok.yaml").write_text((PROJECT_ROOT / "pipelines" / "web_to_markdown.yaml").read_text())
    results = {Path(r.source).name: r for r in validate_directory(folder)}
    assert results["ok.yaml"].valid and [f.code for f in results["deep.yaml"].findings] == ["E007"]


def test_E004_duplicate_keys_are_reported_not_silently_merged():
    text = VALID.replace("version: 1\n", "version: 1\nversion: 1\n")
    assert ("E004", "version", 2) in findings(text)


def test_E101_wrong_structure():
    assert findings("- just\n- a list\n") == [("E101", "", 1)]
    assert ("E101", "routes", 2) in findings("version: 1\nroutes: {a: 1}\ninit_message: {route: a}\n")


def test_E102_duplicate_route_names():
    text = VALID + "  # second route below\n"
    text = text.replace("init_message:", "  - name: scrape\n    input: {route: scrape}\n    adapters: [{type: url_expander}]\ninit_message:")
    assert ("E102", "routes[1].name", 7) in findings(text)


def test_E103_unknown_adapter_type_with_a_suggestion():
    result = validate_text(VALID.replace("type: url_expander", "type: url_expandr"), "p")
    (finding,) = result.findings
    assert (finding.code, finding.path, finding.line) == ("E103", "routes[0].adapters[1].type", 6)
    assert "did you mean 'url_expander'" in finding.message


def test_E104_duplicate_stage_in_a_route_until_named():
    text = VALID.replace("      - type: url_expander\n", "      - type: url_expander\n      - type: url_expander\n")
    assert ("E104", "routes[0].adapters[2]", 7) in findings(text)
    named = VALID.replace("      - type: url_expander\n", "      - type: url_expander\n      - type: url_expander\n        name: expand_again\n")
    assert codes(named) == []


def test_E105_init_message_names_an_unknown_route():
    assert ("E105", "init_message.route", 8) in findings(VALID.replace("route: scrape", "route: scrap"))


def test_E106_route_input_must_exist():
    text = VALID.replace("init_message:", "  - name: later\n    input: {route: nowhere}\n    adapters: [{type: url_expander}]\ninit_message:")
    assert ("E106", "routes[1].input.route", 8) in findings(text)
    text = VALID.replace("init_message:", "  - name: later\n    input: {route: scrape, stage: missing}\n    adapters: [{type: url_expander}]\ninit_message:")
    assert ("E106", "routes[1].input.stage", 8) in findings(text)


def test_E107_cycles_of_route_inputs():
    text = VALID.replace(
        "init_message:",
        "  - name: a\n    input: {route: b}\n    adapters: [{type: url_expander}]\n"
        "  - name: b\n    input: {route: a}\n    adapters: [{type: url_expander}]\ninit_message:",
    )
    assert codes(text).count("E107") == 2


def test_E108_the_init_route_cannot_have_an_input():
    text = VALID.replace("  - name: scrape\n", "  - name: scrape\n    input: {route: scrape}\n")
    assert ("E108", "routes[0].input", 4) in findings(text)


def test_E109_unsupported_version():
    assert findings(VALID.replace("version: 1", "version: 2")) == [("E109", "version", 1)]


def test_E110_invalid_names():
    assert ("E110", "routes[0].name", 3) in findings(VALID.replace("name: scrape", "name: Scrape Pages"))
    assert codes(VALID, name="Bad-Name") == ["E110"]


def test_E110_the_dataset_route_name_is_reserved():
    text = VALID.replace("name: scrape", "name: dataset").replace("route: scrape", "route: dataset")
    assert ("E110", "routes[0].name") in [(f.code, f.path) for f in validate_text(text, "p").findings]


def test_E111_empty_lists():
    assert ("E111", "routes[0].adapters", 4) in findings(VALID.replace(
        "    adapters:\n      - type: sitemap_parser\n      - type: url_expander\n", "    adapters: []\n"))


def test_E201_invalid_values_in_the_pipeline_and_in_adapter_config():
    assert ("E201", "routes[0].concurrency", 4) in findings(VALID.replace("    adapters:", "    concurrency: 0\n    adapters:"))
    text = VALID.replace("- type: sitemap_parser", "- type: sitemap_parser\n        config: {max_urls: -5, include: ['(']}")
    found = findings(text)
    assert ("E201", "routes[0].adapters[0].config.max_urls", 6) in found
    assert ("E201", "routes[0].adapters[0].config.include", 6) in found


@pytest.mark.parametrize("retention, path", [
    ("{keep: 0}", "retention.keep"),
    ("{older_than: 30 days}", "retention.older_than"),
    ("{}", "retention"),  # neither what to keep nor an age
])
def test_E201_a_retention_that_keeps_nothing_or_has_no_age(retention, path):
    assert findings(VALID + f"retention: {retention}\n") == [("E201", path, 10)]
    assert validate_text(VALID + "retention: {keep: 14, older_than: 2w}\n", "p").valid


def test_E301_unknown_fields_anywhere_with_suggestions():
    result = validate_text(VALID.replace("- type: url_expander", "- type: url_expander\n        config:\n          feild: urls"), "p")
    (finding,) = result.findings
    assert (finding.code, finding.path, finding.line) == ("E301", "routes[0].adapters[1].config.feild", 8)
    assert "for adapter url_expander" in finding.message and "did you mean 'field'" in finding.message
    nested = VALID.replace("- type: url_expander", "- type: web_scraper\n        config:\n          rate_limit: {intial_rps: 2}")
    (finding,) = validate_text(nested, "p").findings
    assert finding.path == "routes[0].adapters[1].config.rate_limit.intial_rps"
    assert "did you mean 'initial_rps'" in finding.message
    assert ("E301", "concurency", 10) in findings(VALID + "concurency: 3\n")


def test_E302_missing_required_fields():
    assert ("E302", "init_message", 1) in findings("version: 1\nroutes:\n  - name: a\n    adapters: [{type: url_expander}]\n")
    assert ("E302", "routes[0].adapters[0].type", 5) in findings(VALID.replace("- type: sitemap_parser", "- name: parse"))


def test_W501_W502_W503_warnings_do_not_make_a_file_invalid():
    text = VALID.replace("    adapters:", "    concurrency: 100\n    adapters:").replace('{sitemap_url: "http://127.0.0.1/sitemap.xml"}', "{}")
    text = text.replace("init_message:", "  - name: orphan\n    adapters: [{type: url_expander}]\ninit_message:")
    result = validate_text(text, "p")
    assert result.valid
    assert sorted(f.code for f in result.findings) == ["W501", "W502", "W503"]
    assert all(f.severity == "warning" for f in result.findings)


def test_every_code_the_validator_can_emit_is_listed_and_documented():
    """Every code written in the config package's source (where findings are made) is in CODES,
    every code in CODES is emitted somewhere, and the README's table names each one."""
    import re

    source = "".join(path.read_text() for path in (PROJECT_ROOT / "factflow_assets" / "config").glob("*.py") if path.name != "findings.py")
    emitted = set(re.findall(r"\"([EW]\d{3})\"", source))
    assert len(emitted) >= 20  # the scan sees the validator's codes
    assert emitted == set(CODES)
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert [code for code in sorted(CODES) if not re.search(rf"\| {code} \|", readme)] == []


def test_cli_validate_exit_codes_and_json(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("type: url_expander", "type: nope"))
    runner = CliRunner()

    ok = runner.invoke(cli, ["config", "validate", str(good)])
    assert ok.exit_code == 0 and "valid" in ok.output

    failed = runner.invoke(cli, ["config", "validate", str(tmp_path), "--output", "json"])
    assert failed.exit_code == 1
    report = json.loads(failed.output)
    assert report["valid"] is False
    by_file = {Path(f["path"]).name: f for f in report["files"]}
    assert by_file["good.yaml"]["valid"] is True
    (finding,) = by_file["bad.yaml"]["findings"]
    assert finding["code"] == "E103" and finding["path"] == "routes[0].adapters[1].type" and finding["line"] == 6

    table = runner.invoke(cli, ["config", "validate", str(bad)])
    assert table.exit_code == 1 and "E103" in table.output and "routes[0].adapters[1].type" in table.output


@pytest.mark.parametrize("garbage", ["{", "version: [", ": :", "\t- x", "routes: !!python/object:os.system {}"])
def test_malformed_yaml_is_a_finding_never_a_crash(garbage):
    result = validate_text(garbage, "p")
    assert not result.valid and result.findings


def test_the_original_yaml_shape_is_recognised_and_the_shape_here_shown():
    old = dedent(
        """\
        version: 1
        routes:
          sitemap_scraper:
            inbound: {queue: sitemap_urls}
            adapters: [{type: sitemap_parser}]
            outbound: {queue: pages}
        init_message: {route: sitemap_scraper, payload: {}}
        """
    )
    (finding,) = validate_text(old, "p").findings
    assert (finding.code, finding.path, finding.line) == ("E101", "routes", 2)
    assert "not a mapping keyed by route name" in finding.message and "name: sitemap_scraper" in finding.message
    assert "input: {route: NAME}" in finding.message

    queues = VALID.replace("  - name: scrape\n", "  - name: scrape\n    inbound: {queue: q}\n")
    (queue,) = validate_text(queues, "p").findings
    assert (queue.code, queue.path, queue.line) == ("E301", "routes[0].inbound", 4) and "input: {route: NAME}" in queue.message
