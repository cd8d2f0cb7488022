"""`factflow system health|metrics`: is everything up, and what is it doing.

Thin commands over `factflow_assets.operations.health` and `.metrics`.
"""

from __future__ import annotations

import click

from .environment import Environment, pass_environment
from .output import format_size, line, make_table, output_option, print_json, stdout, styled


@click.group()
def system() -> None:
    """Health of every subsystem, and metrics from the databases."""


@system.command("health")
@click.option("--debug", is_flag=True, help="Also versions, backends, URIs (secrets masked) and how long each probe took.")
@output_option
@pass_environment
def health_command(env: Environment, debug: bool, output: str) -> None:
    """Probe the Dagster storages, the daemon, the factflow database, object storage and the
    pipelines directory. Exit 0 healthy, 1 degraded, 2 unhealthy."""
    from factflow_assets.operations.health import check_health

    report = check_health(env.settings)
    if output == "json":
        print_json(report.to_dict(debug))
    else:
        console = stdout()
        console.print(line("factflow is ", styled(report.overall)))
        columns = ("SUBSYSTEM", "STATUS", "DETAIL") + (("TIME",) if debug else ())
        rows = [
            (p.name, styled(p.status), p.detail) + ((f"{p.seconds * 1000:.1f}ms",) if debug else ())
            for p in report.probes
        ]
        console.print(make_table(columns, rows))
        if debug:
            details = [(p.name, k, _shown(v)) for p in report.probes for k, v in p.debug.items()]
            details += [("versions", name, value) for name, value in report.debug["versions"].items()]
            details.append(("factflow", "home", report.debug["home"]))
            console.print(make_table(("SUBSYSTEM", "SETTING", "VALUE"), details, title="\ndebug"))
    click.get_current_context().exit(report.exit_code)


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return "" if value is None else str(value)


@system.command("metrics")
@click.option("--executions", "executions_shown", default=20, show_default=True, type=click.IntRange(1, 10_000),
              help="How many recent executions the storage table covers.")
@output_option
@pass_environment
def metrics_command(env: Environment, executions_shown: int, output: str) -> None:
    """Executions by status, runs queued and in progress, messages per stage (last hour and in
    all), throughput of running executions, objects and bytes per execution."""
    from factflow_assets.operations.metrics import collect_metrics

    metrics = collect_metrics(env.db, env.instance, executions_shown)
    if output == "json":
        print_json(metrics)
        return
    console = stdout()
    by_status = metrics["executions_by_status"]
    pieces: list = []
    for index, (state, count) in enumerate(sorted(by_status.items())):
        pieces += ([", "] if index else []) + [styled(state), f" {count}"]
    console.print(line("executions: ", *(pieces or ["none"])))
    console.print(line(f"runs: {metrics['runs']['queued']} queued, {metrics['runs']['in_progress']} in progress"))
    rows = [(m["route"], m["stage"], m["processed_last_hour"], m["failed_last_hour"], m["processed"], m["failed"]) for m in metrics["messages"]]
    console.print(make_table(("ROUTE", "STAGE", "LAST HOUR", "FAILED LAST HOUR", "TOTAL", "FAILED"), rows, title="\nmessages processed"))
    if metrics["throughput"]:
        running = [(t["execution_id"], t["pipeline"], t["messages_finished"], t["per_second_last_minute"], t["per_second_overall"])
                   for t in metrics["throughput"]]
        console.print(make_table(("EXECUTION", "PIPELINE", "MESSAGES", "MSG/S LAST MINUTE", "MSG/S OVERALL"), running, title="\nrunning"))
    stored = [(s["execution_id"], s["pipeline"], styled(s["status"]), s["objects"], format_size(s["bytes"])) for s in metrics["storage"]]
    console.print(make_table(("EXECUTION", "PIPELINE", "STATUS", "OBJECTS", "SIZE"), stored, title="\nstored (current outputs)"))
    per_pipeline = [(p["pipeline"], p["executions"], p["objects"], format_size(p["bytes"])) for p in metrics["storage_by_pipeline"]]
    console.print(make_table(("PIPELINE", "EXECUTIONS", "OBJECTS", "SIZE"), per_pipeline, title="\nstorage per pipeline (what retention frees)"))


@system.command("migrate")
@output_option
@pass_environment
def migrate_command(env: Environment, output: str) -> None:
    """Bring the factflow database's schema to the newest revision (Alembic migrations).

    Every command does it on first use; this does it now, for a deployment step.
    """
    from resources.database import migrate_database
    from resources.masking import mask_uri

    before, after = migrate_database(env.settings.database_url)
    if output == "json":
        print_json({"database": mask_uri(env.settings.database_url), "revision_before": before, "revision": after})
        return
    state = "already at" if before == after else f"migrated from {before or 'no revision'} to"
    stdout().print(line(f"factflow database {mask_uri(env.settings.database_url)}: {state} revision {after}"))
