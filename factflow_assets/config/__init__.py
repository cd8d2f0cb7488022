"""Pipeline YAML: models, validation with coded findings, and the compiled `Pipeline`."""

from __future__ import annotations

from pathlib import Path

from resources.errors import NotFoundError, PipelineConfigError

from .findings import CODES, Finding
from .models import PipelineSpec
from .pipeline import Pipeline, Stage, StageRef
from .validate import ValidationResult, validate_file, validate_text

YAML_SUFFIXES = (".yaml", ".yml")


def pipeline_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


def validate_directory(directory: Path) -> list[ValidationResult]:
    return [validate_file(path) for path in pipeline_files(directory)]


def load_pipeline(directory: Path, name_or_path: str) -> Pipeline:
    """The valid pipeline named `name_or_path` (a file stem, or a path to a file in `directory`)."""
    candidate = Path(name_or_path)
    if candidate.suffix in YAML_SUFFIXES:
        name = candidate.stem
        if candidate.exists() and candidate.resolve().parent != directory.resolve():
            raise NotFoundError(f"{name_or_path} is not in the pipelines directory {directory}; move it there or set FACTFLOW_PIPELINES_DIR")
    else:
        name = name_or_path
    path = next((p for p in pipeline_files(directory) if p.stem == name), None)
    if path is None:
        known = ", ".join(p.stem for p in pipeline_files(directory)) or "none"
        raise NotFoundError(f"no pipeline {name!r} in {directory} (pipelines: {known})")
    return require_valid(validate_file(path))


def require_valid(result: ValidationResult) -> Pipeline:
    if not result.valid:
        first = result.errors[0]
        more = f" (+{len(result.errors) - 1} more; run `factflow config validate {result.source}`)" if len(result.errors) > 1 else ""
        raise PipelineConfigError(f"{result.source}: {first.code} {first.location()}: {first.message}{more}", result.findings)
    assert result.pipeline is not None  # a valid result carries its pipeline
    return result.pipeline


__all__ = [
    "CODES",
    "Finding",
    "Pipeline",
    "PipelineSpec",
    "Stage",
    "StageRef",
    "ValidationResult",
    "load_pipeline",
    "pipeline_files",
    "require_valid",
    "validate_directory",
    "validate_file",
    "validate_text",
]
