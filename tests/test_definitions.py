"""The Dagster definitions load, with an asset per stage, wired as the YAML says."""

import dataclasses
from datetime import UTC
from textwrap import dedent

from dagster import AssetKey, Definitions, DynamicPartitionsDefinition

from factflow_assets.assets.location import location_definitions as build_definitions
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

    dataset = graph.get(key("web_to_markdown", "dataset"))  # the hand-off to an index, downstream of pages and segments
    assert dataset.parent_keys == {keys[4], keys[5]} and dataset.automation_condition is not None
    assert isinstance(dataset.partitions_def, DynamicPartitionsDefinition) and dataset.partitions_def.name == "web_to_markdown"

    job = defs.resolve_job_def("web_to_markdown")
    assert job.executor_def.name == "in_process"
    assert set(job.asset_layer.executable_asset_keys) == set(keys) | {key("web_to_markdown", "dataset")}
    assert [sensor.name for sensor in defs.sensors] == ["factflow_dataset_automation"]
    assert set(defs.resources) == {"storage", "database", "http", "settings"}
    checks = {(check.asset_key, check.name) for check in graph.asset_check_keys if check.asset_key.path[0] == "web_to_markdown"}
    html_to_markdown = AssetKey(["web_to_markdown", "markdown_processor", "html_to_markdown"])
    expected = {(k, name) for k in keys for name in ("no_failed_messages", "outputs_for_every_input")} | {(html_to_markdown, "structure_kept")}
    assert checks == expected  # the structure check only where pages become markdown
    assert not list(defs.schedules or [])  # the shipped pipelines have no schedule: none is made
    rendered = defs.resolve_job_def("rendered_web_to_markdown")  # the other shipped pipeline loads too
    assert key("rendered_web_to_markdown", "rendered_scraper", "web_crawler") in set(rendered.asset_layer.executable_asset_keys)


def test_routes_fed_by_other_routes_depend_across_groups_and_bad_yaml_is_left_out(settings, tmp_path):
    (tmp_path / "two.yaml").write_text(TWO_ROUTES)
    (tmp_path / "broken.yaml").write_text("version: [")
    defs = build_definitions(dataclasses.replace(settings, pipelines_dir=tmp_path))
    graph = defs.resolve_asset_graph()
    assert graph.get(key("two", "keep", "keep_html")).parent_keys == {key("two", "fetch", "web_scraper")}
    assert graph.get(key("two", "keep", "keep_html")).group_name == "two__keep"
    assert {k.path[0] for k in graph.get_all_asset_keys()} == {"two"}
    assert [j.name for j in defs.jobs] == ["two"]


def test_a_schedule_in_the_yaml_becomes_a_dagster_schedule_whose_tick_starts_an_execution(settings, tmp_path):
    from datetime import datetime

    from dagster import build_schedule_context

    from factflow_assets.operations.instance import dagster_instance
    from resources.dagster_resources import FactflowDatabaseResource
    from resources.database import FactflowDatabase

    (tmp_path / "two.yaml").write_text(TWO_ROUTES + "schedule: {cron: '0 6 * * 1-5', timezone: Europe/Paris}\n")
    defs = build_definitions(dataclasses.replace(settings, pipelines_dir=tmp_path))
    schedule = defs.resolve_schedule_def("two_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == ("0 6 * * 1-5", "Europe/Paris", "two")
    assert schedule.default_status.value == "RUNNING"

    tick = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    database = FactflowDatabaseResource(url=settings.database_url)
    # factflow's own instance: `instance_for_test` leaves a process-wide state storage behind that
    # points at its deleted folder, and later tests loading definitions trip over it.
    with dagster_instance(settings) as instance:
        requests = []
        for _ in range(2):  # a tick evaluated twice makes one execution
            context = build_schedule_context(instance=instance, scheduled_execution_time=tick, resources={"database": database})
            requests += schedule.evaluate_tick(context).run_requests
        assert instance.get_dynamic_partitions("two") == [requests[0].partition_key]
    assert requests[0] == requests[1]
    record = FactflowDatabase(settings.database_url).executions.get(requests[0].partition_key)
    assert record.status == "queued" and record.tag == "two@2026-11-24T05:00+00:00"
    assert record.origin == {"kind": "schedule", "schedule": "two_schedule", "tick": "2026-11-24T05:00+00:00"}
    assert requests[0].run_key == record.id and requests[0].tags["factflow/execution_id"] == record.id
    assert requests[0].tags["factflow/run_kind"] == "schedule" and requests[0].tags["factflow/config_hash"] == record.config_hash
