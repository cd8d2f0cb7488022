"""`factflow demo`: scrape the bundled demo website with the shipped pipeline, end to end."""

from __future__ import annotations

import dataclasses

import click

from factflow_assets.settings import SHIPPED_PIPELINES_DIR

from .environment import Environment, pass_environment
from .execution_cmd import run_here
from .execution_shared import print_summary
from .output import line, output_option, print_json, stdout

DEMO_PIPELINE = "web_to_markdown"


def run_demo(env: Environment, show_progress: bool = False) -> dict:
    """Serve the demo site on 127.0.0.1, run the shipped pipeline on it, stop the site."""
    from factflow_assets.demo.site import demo_site
    from factflow_assets.operations.launch import StartRequest

    settings = dataclasses.replace(env.settings, pipelines_dir=SHIPPED_PIPELINES_DIR)
    with demo_site() as site:
        request = StartRequest(DEMO_PIPELINE, {"sitemap_url": site.url("/sitemap_index.xml")})
        summary = run_here(env, settings, request, show_progress)
        summary["site"] = {"url": site.base_url, "requests": site.total_requests()}
    return summary


@click.command()
@output_option
@pass_environment
def demo(env: Environment, output: str) -> None:
    """Scrape a local demo website (no server or setup needed) and show what was stored."""
    summary = run_demo(env, show_progress=output != "json")
    if output == "json":
        print_json(summary)
    else:
        console = stdout()
        console.print(line(f"demo site {summary['site']['url']} served {summary['site']['requests']} requests"), "\n")
        print_summary(summary, next_steps=True)
        console.print()
        console.print(line(f"Stored under {env.store.url('executions/' + summary['id'])}"))
    if summary["status"] != "completed":
        click.get_current_context().exit(1)
