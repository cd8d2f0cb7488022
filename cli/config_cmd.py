"""`factflow config validate PATH|DIR`: findings with stable codes; exit 0 only when all valid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from .output import line, make_table, output_option, print_json, stdout

if TYPE_CHECKING:
    from factflow_assets.config import ValidationResult


@click.group()
def config() -> None:
    """Pipeline YAML files."""


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
