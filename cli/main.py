"""The `factflow` entry point: the command groups, and errors as one line, never a traceback."""

from __future__ import annotations

import gc
import os
import sys

import click

from resources.errors import FactflowError
from resources.masking import install_log_masking

from . import (
    config_cmd,
    demo_cmd,
    execution_cmd,
    export_cmd,
    lineage_cmd,
    pipeline_cmd,
    storage_cmd,
    system_cmd,
    ui_cmd,
)


class FactflowGroup(click.Group):
    """Turns every failure into a one-line message and a non-zero exit.

    `FACTFLOW_DEBUG=1` lets unexpected errors through with their traceback, for bug reports.
    """

    def main(self, *args, **kwargs):
        """Click's usage errors (an unknown option, a missing argument) as one line naming where
        help is, instead of the usage block, a hint and the error on four lines."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as error:
            where = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
            click.echo(f"Error: {error.format_message()}{where}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        # not standalone, click hands back a command's `ctx.exit(code)` as its return value
        if isinstance(code, int) and code:
            sys.exit(code)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except FactflowError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as error:
            if os.environ.get("FACTFLOW_DEBUG"):
                raise
            raise click.ClickException(describe_unexpected(error)) from None


def describe_unexpected(error: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError):
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        if "readonly database" in reason:
            return "the factflow database is read-only here: this command writes to it (reading commands work)"
        return f"the factflow database is unreachable or failing: {reason}"
    first_line = (str(error).strip().splitlines() or [""])[0]
    if type(error).__module__.partition(".")[0] in ("botocore", "aiobotocore"):
        return f"storage is unreachable or failing: {type(error).__name__}: {first_line}"
    if isinstance(error, (ConnectionError, OSError)):
        return f"storage or network failure: {type(error).__name__}: {error}"
    return f"{type(error).__name__}: {first_line} (FACTFLOW_DEBUG=1 shows the traceback)"


@click.group(cls=FactflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="factflow")
def cli() -> None:
    """factflow: declarative web-to-knowledge pipelines on Dagster."""


cli.add_command(config_cmd.config)
cli.add_command(execution_cmd.execution)
cli.add_command(storage_cmd.storage)
cli.add_command(lineage_cmd.lineage)
cli.add_command(pipeline_cmd.pipeline)
cli.add_command(system_cmd.system)
cli.add_command(demo_cmd.demo)
cli.add_command(ui_cmd.ui)
cli.add_command(export_cmd.export)


#: Collect young objects after this many allocations, not Python's 700. A command's start (the
#: imports of Dagster and factflow, the instance) makes ~1M objects that live as long as the
#: process and next to no garbage; at the default the collector walks them over and over: 0.35 s of
#: a one-page execution's 2.6 s. Garbage cycles are still collected, 100,000 allocations apart.
GC_THRESHOLD = (100_000, 50, 50)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLD)
    install_log_masking()
    try:
        cli(prog_name="factflow")
    finally:
        # The interpreter's last garbage collections walk every object of the ~3,000 modules a
        # run imports (Dagster's): ~0.3 s at each exit, for memory the exit returns anyway.
        gc.freeze()


if __name__ == "__main__":
    main()
