"""Every use of Dagster's private API, in one place: what no public API does.

- `execute_here`: run a job in this process as a run that names the workspace's code location.
  `JobDefinition.execute_in_process` (public) records no origin on its run, and the Dagster UI then
  refuses to re-execute it ("Re-execute from failure" ends in a CheckError); a factflow execution
  started from the CLI must be as much a Dagster run as one the daemon launched (architecture §2b). So
  the run is created with the origin the workspace gives the location (`workspace.yaml`:
  `factflow_assets.definitions` as location `factflow`) and executed with `execute_run`.
- `submit_to_queue`: put a run of a job of the workspace in the instance's run queue, as
  `dagster job launch` does, for `execution start --detach`.

tests/test_dagster_private.py fails loudly when a Dagster upgrade moves any of these.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRun, JobDefinition

#: The workspace's one code location (workspace.yaml), which the UI and the daemon load.
LOCATION_NAME = "factflow"
LOCATION_MODULE = "factflow_assets.definitions"
#: The name Dagster gives the repository a `Definitions` object makes.
REPOSITORY_NAME = "__repository__"


def location_job_origin(job_name: str, working_directory: Path):
    """The origin a run of `job_name` launched from the workspace would carry."""
    from dagster._core.remote_origin import (
        ManagedGrpcPythonEnvCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=LOCATION_MODULE, working_directory=str(working_directory))
    repository = RemoteRepositoryOrigin(ManagedGrpcPythonEnvCodeLocationOrigin(target, LOCATION_NAME), REPOSITORY_NAME)
    return RemoteJobOrigin(repository, job_name)


def execute_here(
    job: JobDefinition,
    instance: DagsterInstance,
    *,
    run_id: str,
    tags: Mapping[str, str],
    asset_selection: Sequence[AssetKey] | None,
    run_config: Mapping[str, object],
    working_directory: Path,
    parent_run_id: str | None = None,
    root_run_id: str | None = None,
) -> DagsterRun:
    """Create the run (with its origin, and its parent for a resume) and execute it in this
    process; return the run as it ended."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        run_config=run_config,
        tags=tags,
        asset_selection=set(asset_selection) if asset_selection else None,
        remote_job_origin=location_job_origin(job.name, working_directory),
        parent_run_id=parent_run_id,
        root_run_id=(root_run_id or parent_run_id) if parent_run_id else None,  # Dagster wants both or neither
    )
    execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
    ended = instance.get_run_by_id(run_id)
    assert ended is not None  # it was created above
    return ended


def submit_to_queue(instance: DagsterInstance, workspace_file: Path, job_name: str, tags: Mapping[str, str]) -> DagsterRun:
    """Submit a run of `job_name` (every asset) from the workspace to the instance's run queue."""
    import json

    from dagster._cli.job import execute_launch_command
    from dagster_shared.cli import WorkspaceOpts

    return execute_launch_command(
        instance=instance,
        workspace_opts=WorkspaceOpts(workspace=[str(workspace_file)]),
        job_name=job_name,
        tags=json.dumps(dict(tags)),
    )
