"""The Dagster definitions load, with an asset per stage, wired as the YAML says."""

import dataclasses
from textwrap import dedent

from dagster import AssetKey, Definitions, DynamicPartitionsDefinition

from factflow_assets.definitions import build_definitions
from factflow_assets.settings import SHIPPED_PIPELINES_DIR

TWO_ROUTES = dedent(
    """\
    version: 1
    routes:
      - name: fetch
        adapters:
          - type: url_expander
          - type: web_scraper
      - name: keep
        input: {route: fetch, stage: web_scraper}
        adapters:
          - type: web_content_storage
            name: keep_html
    init_message: {route: fetch, payload: {urls: []}}
    """
)


def key(*parts):
    return AssetKey(list(parts))


def test_the_shipped_pipeline_loads_as_partitioned_assets_and_a_job(settings):
    defs = build_definitions(dataclasses.replace(settings, pipelines_dir=SHIPPED_PIPELINES_DIR))
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    stages = ["sitemap_parser", "url_expander", "web_scraper", "web_content_storage"]
    keys = [key("web_to_markdown", "sitemap_scraper", s) for s in stages]
    keys += [key("web_to_markdown", "markdown_processor", s) for s in ("html_to_markdown", "smart_segmenter")]
    assert set(keys) <= set(graph.get_all_asset_keys())
    assert graph.get(keys[0]).parent_keys == set()
    for upstream, downstream in zip(keys, keys[1:]):  # one connected graph, across the two routes
        assert graph.get(downstream).parent_keys == {upstream}
    assert graph.get(keys[4]).group_name == "web_to_markdown__markdown_processor"
    node = graph.get(keys[2])
    assert node.group_name == "web_to_markdown__sitemap_scraper"
    assert isinstance(node.partitions_def, DynamicPartitionsDefinition) and node.partitions_def.name == "web_to_markdown"
    assert node.code_version and len(node.code_version) == 64  # the config hash

    job = defs.resolve_job_def("web_to_markdown")
    assert job.executor_def.name == "in_process"
    assert set(job.asset_layer.executable_asset_keys) == set(keys)
    assert set(defs.resources) == {"storage", "database", "http"}


def test_routes_fed_by_other_routes_depend_across_groups_and_bad_yaml_is_left_out(settings, tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_ROUTES)
    (tmp_path / "broken.yaml").write_text("version: [")
    defs = build_definitions(dataclasses.replace(settings, pipelines_dir=tmp_path))
    graph = defs.resolve_asset_graph()
    assert graph.get(key("two", "keep", "keep_html")).parent_keys == {key("two", "fetch", "web_scraper")}
    assert graph.get(key("two", "keep", "keep_html")).group_name == "two__keep"
    assert {k.path[0] for k in graph.get_all_asset_keys()} == {"two"}
    assert [j.name for j in defs.jobs] == ["two"]
