"""`factflow pipeline list|pause|resume`: the routes of running executions (architecture §6).

Thin commands over `factflow_assets.operations.routes`.
"""

from __future__ import annotations

import click

from .environment import Environment, pass_environment
from .output import bold, line, make_table, note, output_option, print_json, stdout, styled


@click.group()
def pipeline() -> None:
    """See the routes of running executions; pause and resume a route everywhere."""


@pipeline.command("list")
@click.option("--execution", "-e", "execution", help="The routes of this execution (id or tag), whatever its status.")
@output_option
@pass_environment
def list_command(env: Environment, execution: str | None, output: str) -> None:
    """Every route of every queued or running execution: state, in flight, done, failed, pending;
    then every paused route that nothing runs now. With --execution, the routes of that one.

    IN FLIGHT counts messages taken and not finished; PENDING the messages a stage of the route
    has listed and not taken yet (stages not started yet have listed nothing).
    """
    from factflow_assets.operations.routes import active_routes, execution_routes

    activities = execution_routes(env.db, lambda: env.instance, execution) if execution else active_routes(env.db, lambda: env.instance)
    if output == "json":
        print_json([activity.to_dict() for activity in activities])
        return
    if not activities:
        note("no execution is running and no route is paused")
        return
    rows = [
        (a.execution_id or "-", a.pipeline or "-", a.route, styled(a.state), a.in_flight, a.done, a.failed, a.pending)
        for a in activities
    ]
    stdout().print(make_table(("EXECUTION", "PIPELINE", "ROUTE", "STATE", "IN FLIGHT", "DONE", "FAILED", "PENDING"), rows))


def _report_change(change, output: str) -> None:
    if output == "json":
        print_json({"route": change.route, "state": change.state, "executions": change.executions})
        return
    verb = "paused" if change.state == "paused" else "resumed"
    where = f"in {len(change.executions)} running execution(s): {', '.join(change.executions)}" if change.executions else "(no execution has it running now)"
    stdout().print(line("route ", bold(change.route), f" {verb} {where}"))


@pipeline.command("pause")
@click.argument("route")
@output_option
@pass_environment
def pause_command(env: Environment, route: str, output: str) -> None:
    """Pause ROUTE in every execution that has it, now and later, until it is resumed.

    Messages in flight finish; no new message is taken; the runs stay alive and wait.
    """
    from factflow_assets.operations.routes import pause_route

    _report_change(pause_route(env.settings, env.db, route), output)


@pipeline.command("resume")
@click.argument("route")
@output_option
@pass_environment
def resume_command(env: Environment, route: str, output: str) -> None:
    """Let ROUTE take messages again in every execution that has it."""
    from factflow_assets.operations.routes import resume_route

    _report_change(resume_route(env.settings, env.db, route), output)
