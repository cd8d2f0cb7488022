"""`factflow execution start|list|get|wait|replay|resume|cancel`."""

from __future__ import annotations

import json

import click

from .environment import Environment, pass_environment
from .execution_recovery import cancel_command, replay_command, resume_command
from .execution_retention import delete_command, prune_command
from .execution_shared import (
    describe_origin,
    print_summary,
    report_run,
    run_plan_here,
    wait_until_stopped,
    warn_paused_routes,
)
from .output import bold, format_duration, format_time, line, make_table, note, output_option, print_json, stdout, styled
from .progress import live_progress


@click.group()
def execution() -> None:
    """Start, follow, replay, resume and cancel pipeline executions."""


execution.add_command(replay_command)
execution.add_command(resume_command)
execution.add_command(cancel_command)
execution.add_command(delete_command)
execution.add_command(prune_command)


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--set key=value` pairs into init-payload overrides."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        overrides[key.strip()] = value
    return overrides


def run_here(env: Environment, settings, request, show_progress: bool) -> dict:
    """Record a new execution and run it in this process; return its summary (shared with `demo`)."""
    from factflow_assets.config import load_pipeline
    from factflow_assets.engine.stream import warm_up

    warm_up(load_pipeline(settings.pipelines_dir, request.pipeline).stages)  # before Dagster's imports, in parallel

    from factflow_assets.operations.launch import RunPlan, prepare_execution

    record = prepare_execution(settings, env.db, env.instance, request, note, runs_here=True)
    return run_plan_here(env, settings, RunPlan.start(record), show_progress)


@execution.command("start")
@click.argument("pipeline")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override an init-payload field (repeatable).")
@click.option("--tag", help="A unique name that can stand in for the execution id.")
@click.option("--detach", is_flag=True, help="Submit to the Dagster run queue and return at once.")
@click.option(
    "--since",
    metavar="E|latest",
    help="Incremental: ask the site only what changed since execution E (or the newest completed one with this payload) and carry the rest over.",
)
@output_option
@pass_environment
def start_command(env: Environment, pipeline: str, sets: tuple[str, ...], tag: str | None, detach: bool, since: str | None, output: str) -> None:
    """Start an execution of PIPELINE (a name from the pipelines directory)."""
    from factflow_assets.operations.launch import (
        StartRequest,
        prepare_execution,
        submit_to_queue,
    )

    request = StartRequest(pipeline, parse_overrides(sets), tag, since)
    if detach:
        record = prepare_execution(env.settings, env.db, env.instance, request, note)
        warn_paused_routes(env, record)
        record = submit_to_queue(env.settings, env.db, env.instance, record)
        if output == "json":
            print_json({"execution_id": record.id, "status": record.status, "run_id": record.dagster_run_id})
        else:
            stdout().print(line("execution ", bold(record.id), f" queued (run {record.dagster_run_id}); follow it with: factflow execution wait {record.id}"))
        return
    summary = run_here(env, env.settings, request, show_progress=output != "json")
    report_run(summary, output, {"execution_id": summary["id"]}, next_steps=True)


@execution.command("list")
@click.option("--status", help="Only executions in this status.")
@click.option("--pipeline", help="Only executions of this pipeline.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@output_option
@pass_environment
def list_command(env: Environment, status: str | None, pipeline: str | None, limit: int, output: str) -> None:
    """Executions, newest first."""
    records = env.db.executions.recent(status=status, pipeline=pipeline, limit=limit)
    if any(r.active for r in records):  # only active executions need Dagster's view of their runs
        from factflow_assets.operations.status import refresh_status

        records = [refresh_status(env.db, env.instance, r) if r.active else r for r in records]
    replays = env.db.replays.counts_within([r.id for r in records])
    none = {"in_place": 0, "into_routes": 0}
    if output == "json":
        print_json([{**r.to_dict(), "replays": replays.get(r.id, none)} for r in records])
        return
    rows = [
        (
            r.id,
            r.tag,
            r.pipeline,
            styled(r.status),
            format_time(r.created_at),
            format_duration(r.duration_s),
            format_time(r.finished_at) if r.finished_at != r.first_finished_at else "",
            describe_origin(r.origin),
            _replays_cell(replays.get(r.id, none)),
        )
        for r in records
    ]
    columns = ("ID", "TAG", "PIPELINE", "STATUS", "CREATED", "DURATION", "LAST ACTIVITY", "ORIGIN", "REPLAYS")
    stdout().print(make_table(columns, rows))


def _replays_cell(counts: dict[str, int]) -> str:
    """`2 in place, 1 into a route`: the two kinds are different things (the second made a child)."""
    parts = [f"{counts['in_place']} in place"] if counts["in_place"] else []
    if counts["into_routes"]:
        parts.append(f"{counts['into_routes']} into a route")
    return ", ".join(parts)


@execution.command("get")
@click.argument("execution_id")
@output_option
@pass_environment
def get_command(env: Environment, execution_id: str, output: str) -> None:
    """One execution: status, per-route and per-stage counts, its Dagster runs."""
    from factflow_assets.operations.status import execution_summary

    summary = execution_summary(env.db, env.instance, env.db.executions.resolve(execution_id))
    if output == "json":
        print_json(summary)
        return
    print_summary(summary)
    console = stdout()
    console.print()
    console.print(
        line(
            f"created {format_time(summary['created_at'])}  started {format_time(summary['started_at'])}  "
            f"finished {format_time(summary['first_finished_at'] or summary['finished_at'])}  "
            f"duration {format_duration(summary['duration_s'])} (its first run)"
        )
    )
    if summary["first_finished_at"] and summary["finished_at"] != summary["first_finished_at"]:
        console.print(line(f"last activity {format_time(summary['finished_at'])} (a replay or a resume since)"))
    console.print(line(f"config {summary['config_hash'][:12]}  init payload {json.dumps(summary['init_payload'], ensure_ascii=False)}"))
    console.print(line(f"origin {describe_origin(summary['origin'])}"))
    if summary["parent_id"] or summary["children"]:
        console.print(line(f"parent {summary['parent_id'] or '-'}  children {', '.join(summary['children']) or '-'}"))
    if summary["replays"]:
        rows = [
            (
                format_time(r["created_at"]),
                r["execution_id"],
                f"{r['from_route']}/{r['from_stage']}",
                r["to_route"] or "(in place)",
                r["target_execution_id"],
                f"{r['previous_config_hash'][:8]} → {r['config_hash'][:8]}",
                r["superseded_rows"],
                r["deleted_objects"],
            )
            for r in summary["replays"]
        ]
        columns = ("WHEN", "FROM EXECUTION", "FROM STAGE", "INTO ROUTE", "INTO EXECUTION", "CONFIG", "SUPERSEDED ROWS", "DELETED OBJECTS")
        console.print(make_table(columns, rows, title="\nreplays"))
    if summary["deliveries"]:
        delivery_rows = [
            (format_time(d["created_at"]), d["event"], d["url"], d["status"], d["attempts"], d["response_status"] or "-", d["error"] or "")
            for d in summary["deliveries"]
        ]
        console.print(make_table(("WHEN", "EVENT", "WEBHOOK", "STATUS", "ATTEMPTS", "ANSWER", "LAST ERROR"), delivery_rows, title="\nwebhook deliveries"))
    if summary["runs"]:
        run_rows = [(r["run_id"], r["status"], r["kind"], r["replay_from"]) for r in summary["runs"]]
        console.print(make_table(("DAGSTER RUN", "STATUS", "KIND", "REPLAY FROM"), run_rows, title="\nruns"))


@execution.command("diff")
@click.argument("source")
@click.argument("target")
@click.option("--only", metavar="CHANGES", help="Comma-separated: changed, added, removed, unchanged (default: all).")
@output_option
@pass_environment
def diff_command(env: Environment, source: str, target: str, only: str | None, output: str) -> None:
    """Pages added, removed, changed and unchanged from execution SOURCE to TARGET (one pipeline),
    by URL and content hash."""
    from factflow_assets.operations.diff import CHANGES, diff_executions

    wanted = tuple(part.strip() for part in only.split(",")) if only else CHANGES
    unknown = [part for part in wanted if part not in CHANGES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} is not one of {', '.join(CHANGES)}", param_hint="--only")
    diff = diff_executions(env.db, source, target)
    if output == "json":
        print_json(diff.to_dict(wanted))
        return
    rows = [
        (change, page.url, page.message_id, (page.before or "-")[:12], (page.after or "-")[:12])
        for change in CHANGES
        if change in wanted
        for page in diff.changes[change]
    ]
    stdout().print(make_table(("CHANGE", "URL", "MESSAGE", "BEFORE", "AFTER"), rows))
    counts = ", ".join(f"{len(diff.changes[change])} {change}" for change in CHANGES)
    stdout().print(line(f"{diff.source} → {diff.target}: {counts}"))


@execution.command("wait")
@click.argument("execution_id")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds (exit 2).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between checks.")
@output_option
@pass_environment
def wait_command(env: Environment, execution_id: str, timeout: float | None, interval: float, output: str) -> None:
    """Wait for an execution to end; exit 0 if it completed, 1 if not, 2 on timeout."""
    from factflow_assets.operations.status import execution_summary, refresh_status

    record = refresh_status(env.db, env.instance, env.db.executions.resolve(execution_id))
    with live_progress(env, record.id, enabled=output != "json"):
        record = wait_until_stopped(env, record, timeout, interval)
    report_run(execution_summary(env.db, env.instance, record), output)
