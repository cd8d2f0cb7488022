"""`factflow execution delete|prune`: remove executions everywhere they live (retention).

Thin commands over `factflow_assets.operations.retention`. Nothing is deleted without `--yes`:
on a terminal the command asks, with the counts; in a script it refuses.
"""

from __future__ import annotations

import sys

import click

from .environment import Environment, pass_environment
from .output import (
    format_size,
    format_time,
    make_table,
    note,
    output_option,
    print_json,
    stdout,
    styled,
)

STATUSES = ("completed", "failed", "cancelled", "interrupted", "deleting")


def _confirm_and_delete(env: Environment, doomed: list, yes: bool, dry_run: bool, output: str) -> None:
    from factflow_assets.operations.retention import delete_executions

    if output == "json" and (dry_run or not doomed):
        print_json({"dry_run": dry_run, "executions": [d.to_dict() for d in doomed], "deleted": []})
        return
    if output != "json":
        rows = [
            (
                d.record.id,
                d.record.pipeline,
                styled(d.record.status),
                format_time(d.record.created_at),
                d.objects,
                format_size(d.bytes),
                d.lineage_rows,
                len(d.runs),
            )
            for d in doomed
        ]
        stdout().print(make_table(("EXECUTION", "PIPELINE", "STATUS", "CREATED", "OBJECTS", "SIZE", "ROWS", "RUNS"), rows))
    total = (
        f"{len(doomed)} execution(s): {sum(d.objects for d in doomed)} objects ({format_size(sum(d.bytes for d in doomed))}), "
        f"{sum(d.lineage_rows for d in doomed)} lineage rows, {sum(len(d.runs) for d in doomed)} Dagster runs"
    )
    if not doomed:
        note("nothing to delete")
        return
    if dry_run:
        note(f"would delete {total}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"refusing to delete {total} without --yes (no terminal to ask)")
        click.confirm(f"delete {total}?", abort=True, err=True)
    delete_executions(env.settings, env.db, env.store, env.instance, doomed)
    if output == "json":
        print_json({"dry_run": False, "executions": [d.to_dict() for d in doomed], "deleted": [d.record.id for d in doomed]})
    else:
        note(f"deleted {total}")


@click.command("delete")
@click.argument("execution_ids", nargs=-1, required=True, metavar="EXECUTION...")
@click.option("--with-children", is_flag=True, help="Also delete the child executions (replays into a route) that read these.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option("--dry-run", is_flag=True, help="Only say what would go.")
@output_option
@pass_environment
def delete_command(env: Environment, execution_ids: tuple[str, ...], with_children: bool, yes: bool, dry_run: bool, output: str) -> None:
    """Delete executions everywhere they live: objects, lineage and bookkeeping rows, their Dagster
    partition, runs and event logs. A delete stopped part-way finishes when run again."""
    from factflow_assets.operations.retention import plan_execution_delete

    doomed = plan_execution_delete(env.db, env.store, env.instance, execution_ids, with_children)
    _confirm_and_delete(env, doomed, yes, dry_run, output)


@click.command("prune")
@click.option("--pipeline", help="Only executions of this pipeline.")
@click.option("--keep", type=click.IntRange(0), help="Keep the newest N of the matching executions.")
@click.option("--older-than", metavar="AGE", help="Delete only executions older than this: 30d, 12h, 2w.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only executions in this status (repeatable).")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.option("--dry-run", is_flag=True, help="Only say what would go.")
@output_option
@pass_environment
def prune_command(
    env: Environment, pipeline: str | None, keep: int | None, older_than: str | None, statuses: tuple[str, ...], yes: bool, dry_run: bool, output: str
) -> None:
    """Delete every execution that matches, keeping the newest (never a running one)."""
    from factflow_assets.operations.retention import plan_prune

    plan = plan_prune(env.db, env.store, env.instance, pipeline, keep, older_than, statuses)
    for record in plan.spared:
        note(f"keeping {record.id}: a child execution that reads it is kept")
    _confirm_and_delete(env, plan.doomed, yes, dry_run, output)
