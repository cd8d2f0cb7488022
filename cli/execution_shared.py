"""What the execution commands (and `demo`) share: showing an execution, running a plan here."""

from __future__ import annotations

import time

import click
from rich.text import Text

from .environment import Environment
from .output import bold, line, make_table, note, print_json, stdout, styled
from .progress import STAGE_COLUMNS, live_progress, stage_rows


def describe_origin(origin: dict | None) -> str:
    """How an execution came to be, in a few words: `start`, or `replay of E from S into R`."""
    origin = origin or {}
    if origin.get("kind") == "replay":
        return f"replay of {origin['parent']} from {origin['from_stage']} into {origin['to_route']}"
    since = f", since {origin['since']}" if origin.get("since") else ""
    if origin.get("kind") == "schedule":
        return f"schedule tick {origin['tick']}{since}"
    return origin.get("kind", "start") + since


def print_summary(summary: dict, next_steps: bool = False) -> None:
    console = stdout()
    console.print(line("execution ", bold(summary["id"]), "  ", styled(summary["status"]), "  pipeline ", summary["pipeline"],
                       *(("  tag ", summary["tag"]) if summary.get("tag") else ())))
    if summary.get("error"):
        console.print(line(Text("error:", style="red"), " ", summary["error"]))
    console.print(make_table(STAGE_COLUMNS, stage_rows(summary["stages"])))
    if summary["failures"]:
        rows = [(f["stage"], f["message_id"], f["error"]) for f in summary["failures"]]
        console.print(make_table(("STAGE", "MESSAGE", "ERROR"), rows, title="\nfailed messages (first 10)"))
    for structure in summary.get("structure", []):
        if structure["pages"]:
            print_structure(structure)
    if summary.get("duplicates"):
        console.print(line(
            f"\n{summary['duplicates']} page(s) repeat another and are left out of the dataset: ",
            f"factflow lineage list -e {summary['id']} --status skipped",
        ))
    if next_steps:
        console.print("\nNext:")
        console.print(line(f"  factflow execution get {summary['id']}"))
        console.print("  factflow execution list")
        console.print("  factflow config validate")


def print_structure(structure: dict) -> None:
    """What the markdown kept of the pages' main regions, and the pages that lost some."""
    console = stdout()
    kept = ", ".join(f"{kind.replace('_', ' ')} {c['kept']}/{c['region']}" for kind, c in structure["kinds"].items())
    console.print()
    console.print(line(f"{structure['stage']}: markdown kept of {structure['pages']} page(s)' main content: ", kept))
    if structure["pages_with_losses"]:
        rows = [(page["url"] or page["message_id"], page["lost"]) for page in structure["first_pages_with_losses"]]
        title = f"pages whose markdown lost structure ({structure['pages_with_losses']}; first 10)"
        console.print(make_table(("PAGE", "LOST"), rows, title=title))


def report_run(summary: dict, output: str, extra: dict | None = None, next_steps: bool = False) -> None:
    """Print what a run here ended with (JSON: `extra` then the summary); exit 1 unless it completed."""
    if output == "json":
        print_json({**(extra or {}), **summary})
    else:
        print_summary(summary, next_steps=next_steps)
    if summary["status"] != "completed":
        click.get_current_context().exit(1)


def warn_paused_routes(env: Environment, record) -> None:
    """Say at once, on stderr, which routes of the execution are paused and will wait."""
    from factflow_assets.engine.executions import frozen_pipeline
    from factflow_assets.operations.routes import paused_routes

    waiting = [route for route in frozen_pipeline(env.db, record.config_hash, record.pipeline).route_names() if route in paused_routes(env.db)]
    for route in waiting:
        note(f"route {route} is paused: its stages will wait until `factflow pipeline resume {route}`")


def run_plan_here(env: Environment, settings, plan, show_progress: bool) -> dict:
    """Run a RunPlan in this process with the live progress display; return the execution's summary."""
    from factflow_assets.operations.launch import run_in_process
    from factflow_assets.operations.status import execution_summary

    warn_paused_routes(env, plan.record)
    with live_progress(env, plan.record.id, enabled=show_progress):
        record = run_in_process(settings, env.db, env.instance, plan)
    return execution_summary(env.db, env.instance, record)


class StillRunning(click.ClickException):
    """An execution did not stop within the time it was given: exit 2, apart from failures (1)."""

    exit_code = 2


def wait_until_stopped(env: Environment, record, timeout: float | None, interval: float, doing: str | None = None):
    """Poll the execution (its status refreshed from Dagster and liveness) until it is no longer
    active; return its record. StillRunning after `timeout` seconds."""
    from factflow_assets.operations.status import refresh_status

    deadline = time.monotonic() + timeout if timeout else None
    while record.active:
        if deadline and time.monotonic() > deadline:
            raise StillRunning(f"execution {record.id} is still {doing or record.status} after {timeout:g} s")
        time.sleep(interval)
        record = refresh_status(env.db, env.instance, env.db.executions.get(record.id))
    return record
