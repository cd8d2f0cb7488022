"""`factflow execution replay|resume|cancel`: re-run from storage, finish, stop (architecture §5–6).

Thin commands over `factflow_assets.operations.replay|resume|cancel`; replay and resume run here, in
this process, with the live progress display, like `execution start`.
"""

from __future__ import annotations

import click

from .environment import Environment, pass_environment
from .execution_shared import report_run, run_plan_here, wait_until_stopped
from .output import bold, line, note, output_option, print_json, stdout, styled


@click.command("replay")
@click.argument("execution_id")
@click.option("--from-stage", "from_stage", required=True, metavar="[ROUTE/]STAGE",
              help="Re-run every stage downstream of this one from what it stored (not this stage itself).")
@click.option("--to-route", metavar="ROUTE", help="Instead, feed what FROM-STAGE stored to ROUTE's first stage, in a new child execution.")
@click.option("--pipeline", metavar="PIPELINE", help="With --to-route: the pipeline that has ROUTE, when the execution's own has not.")
@output_option
@pass_environment
def replay_command(env: Environment, execution_id: str, from_stage: str, to_route: str | None, pipeline: str | None, output: str) -> None:
    """Re-publish what a stage of EXECUTION_ID stored into the stages after it; nothing is fetched.

    Takes what the execution stored for FROM-STAGE (executions/E/ROUTE/STAGE/*) and runs every
    stage downstream of it again, within the same execution, with the pipeline's YAML and code as
    they are now. FROM-STAGE itself and everything upstream of it do not run. So
    `--from-stage web_scraper` re-does web_content_storage, html_to_markdown and smart_segmenter
    from the stored pages; to run html_to_markdown again after fixing it, replay from the stage
    that feeds it (web_content_storage). Each replayed object is written over its old key, keys not
    written again are deleted, and the replaced lineage rows stay as history, marked superseded.

    With --to-route, what FROM-STAGE stored becomes the input of ROUTE's first stage in a new
    child execution instead, and the execution itself is left as it is.
    """
    from factflow_assets.operations.replay import ReplayRequest, plan_replay

    if pipeline and not to_route:
        raise click.UsageError("--pipeline goes with --to-route")
    plan = plan_replay(env.settings, env.db, env.store, env.instance, ReplayRequest(execution_id, from_stage, to_route, pipeline))
    if to_route:
        note(f"child execution {plan.run.record.id}: {plan.inputs} object(s) of {plan.input_from} into route {to_route}")
    else:
        note(
            f"replaying {', '.join(str(ref) for ref in plan.run.stages or ())} of {plan.run.record.id} from what "
            f"{plan.input_from} holds ({plan.inputs} object(s))"
        )
    summary = run_plan_here(env, env.settings, plan.run, show_progress=output != "json")
    replay = env.db.replays.get(plan.replay_id)
    if replay is not None and not to_route and output != "json":
        left = (
            f"{replay.deleted_objects} object(s) of the earlier run were not written again and are deleted"
            if replay.deleted_objects
            else "no leftover of the earlier run"
        )
        note(f"replay {replay.id}: {replay.superseded_rows} lineage row(s) superseded; each object written over its old key; {left}")
    report_run(summary, output, {"replay": replay.to_dict() if replay else None})


@click.command("resume")
@click.argument("execution_id")
@output_option
@pass_environment
def resume_command(env: Environment, execution_id: str, output: str) -> None:
    """Finish an execution that was interrupted, cancelled or failed.

    Runs the stages its last run did not complete, with the config that run used; messages
    already done are skipped, so nothing is fetched or stored twice.
    """
    from factflow_assets.operations.resume import plan_resume

    plan = plan_resume(env.db, env.store, env.instance, execution_id)
    note(f"resuming {plan.record.id}: {', '.join(str(ref) for ref in plan.stages or ())}")
    summary = run_plan_here(env, env.settings, plan, show_progress=output != "json")
    report_run(summary, output)


@click.command("cancel")
@click.argument("execution_id")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the run has stopped.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to wait for the messages in flight (exit 2 after).")
@output_option
@pass_environment
def cancel_command(env: Environment, execution_id: str, wait: bool, timeout: float, output: str) -> None:
    """Stop an execution gracefully: no new messages, the ones in flight finish; resume continues it."""
    from factflow_assets.operations.cancel import request_cancel

    record = request_cancel(env.db, env.instance, execution_id)
    if record.active and wait:
        note(f"cancel requested; waiting for the messages in flight of {record.id} to finish")
        record = wait_until_stopped(env, record, timeout, interval=0.5, doing="stopping")
    if output == "json":
        print_json({"execution_id": record.id, "status": record.status, "cancel_requested": True})
    else:
        state = "stopping (cancel requested)" if record.active else styled(record.status)
        stdout().print(line("execution ", bold(record.id), " ", state, f"; continue it with: factflow execution resume {record.id}"))
    if wait and record.status not in ("cancelled",):
        click.get_current_context().exit(1)
