"""`factflow config validate PATH|DIR`: findings with stable codes; exit 0 only when all valid.
`factflow config list|show`: the configurations executions ran with, as they were frozen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from .environment import Environment, pass_environment
from .output import format_time, line, make_table, output_option, print_json, stdout

if TYPE_CHECKING:
    from factflow_assets.config import ValidationResult


@click.group()
def config() -> None:
    """Pipeline YAML files, and the configurations executions ran with."""


def validate_paths(path: Path) -> list[ValidationResult]:
    """Validate one file, or every YAML file of a directory."""
    from factflow_assets.config import (  # imports every adapter: only when used
        pipeline_files,
        validate_file,
    )

    if path.is_dir():
        files = pipeline_files(path)
        if not files:
            raise click.ClickException(f"no .yaml or .yml files in {path}")
        return [validate_file(f) for f in files]
    return [validate_file(path)]


@config.command("validate")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@output_option
def validate_command(path: Path | None, output: str) -> None:
    """Check pipeline YAML (a file or a directory of them; default: the pipelines directory)."""
    if path is None:
        from factflow_assets.settings import Settings

        path = Settings.from_env().pipelines_dir
    if not path.exists():
        raise click.ClickException(f"no file or directory at {path}")
    results = validate_paths(path)
    if output == "json":
        print_json(
            {
                "valid": all(r.valid for r in results),
                "files": [
                    {"path": r.source, "valid": r.valid, "findings": [f.to_dict() for f in r.findings]}
                    for r in results
                ],
            }
        )
    else:
        console = stdout()
        for result in results:
            errors = len(result.errors)
            warnings = len(result.findings) - errors
            verdict = Text("valid", style="green") if result.valid else Text(f"{errors} error(s)", style="red")
            if warnings:
                verdict = Text.assemble(verdict, ", ", Text(f"{warnings} warning(s)", style="yellow"))
            console.print(line(result.source, ": ", verdict))
            if result.findings:
                rows = [(f.code, f.path or "(document)", f.line or "", f.message) for f in result.findings]
                console.print(make_table(("CODE", "PATH", "LINE", "MESSAGE"), rows))
    if not all(r.valid for r in results):
        click.get_current_context().exit(1)


@config.command("list")
@output_option
@pass_environment
def list_command(env: Environment, output: str) -> None:
    """Every configuration an execution ran with (frozen by hash when it started or was replayed),
    the most recently used first: its pipeline, first and last use, the executions."""
    uses = env.db.executions.config_uses()
    if output == "json":
        print_json([{**use, "first_used_at": use["first_used_at"].isoformat(), "last_used_at": use["last_used_at"].isoformat()} for use in uses])
        return
    if not uses:
        stdout().print("no configuration is stored yet: none is until an execution starts")
        return
    rows = [
        (
            use["config_hash"][:12], use["pipeline"], format_time(use["first_used_at"]), format_time(use["last_used_at"]),
            len(use["executions"]), ", ".join(use["executions"][:3]) + (" …" if len(use["executions"]) > 3 else ""),
        )
        for use in uses
    ]
    stdout().print(make_table(("CONFIG", "PIPELINE", "FIRST USED", "LAST USED", "EXECUTIONS", "SOME"), rows))


@config.command("show")
@click.argument("config_or_execution")
@output_option
@pass_environment
def show_command(env: Environment, config_or_execution: str, output: str) -> None:
    """The YAML exactly as it was frozen: by config hash (or 6+ characters of it), or of an
    execution (id or tag: the configuration it runs with now)."""
    frozen = env.db.executions.find_config(config_or_execution)
    if output == "json":
        print_json({**frozen, "created_at": frozen["created_at"].isoformat()})
        return
    click.echo(f"# config {frozen['config_hash']} of pipeline {frozen['pipeline']}, frozen {format_time(frozen['created_at'])}")
    click.echo(frozen["yaml"], nl=not frozen["yaml"].endswith("\n"))
