"""Dagster's private API that factflow uses (assets/dagster_private.py), pinned: these fail loudly,
naming what moved, when a Dagster upgrade moves it, before any execution does."""

import importlib

import pytest

PRIVATE = [
    ("dagster._core.remote_origin", "ManagedGrpcPythonEnvCodeLocationOrigin"),
    ("dagster._core.remote_origin", "RemoteRepositoryOrigin"),
    ("dagster._core.remote_origin", "RemoteJobOrigin"),
    ("dagster._core.types.loadable_target_origin", "LoadableTargetOrigin"),
    ("dagster._core.definitions.job_base", "InMemoryJob"),
    ("dagster._core.execution.api", "execute_run"),
    ("dagster._cli.job", "execute_launch_command"),
    ("dagster_shared.cli", "WorkspaceOpts"),
]


@pytest.mark.parametrize("module, name", PRIVATE)
def test_each_private_name_factflow_uses_is_still_there(module, name):
    assert hasattr(importlib.import_module(module), name), f"Dagster moved {module}.{name}: update factflow_assets/assets/dagster_private.py"


def test_a_run_executed_here_names_the_workspace_location_so_the_ui_can_re_execute_it(tmp_path):
    from dagster import (
        DagsterInstance,
        DagsterRunStatus,
        Definitions,
        asset,
        define_asset_job,
        in_process_executor,
    )

    from factflow_assets.assets.dagster_private import (
        LOCATION_NAME,
        REPOSITORY_NAME,
        execute_here,
    )

    @asset
    def one() -> None:
        return None

    job = Definitions(assets=[one], jobs=[define_asset_job("j", executor_def=in_process_executor)]).resolve_job_def("j")
    with DagsterInstance.ephemeral() as instance:
        run = execute_here(job, instance, run_id="0" * 8 + "-0000-4000-8000-" + "0" * 12, tags={"a": "b"}, asset_selection=None,
                           run_config={}, working_directory=tmp_path)
        assert run.status == DagsterRunStatus.SUCCESS and run.tags["a"] == "b"
        origin = run.remote_job_origin
        assert (origin.location_name, origin.repository_origin.repository_name, origin.job_name) == (LOCATION_NAME, REPOSITORY_NAME, "j")
        again = execute_here(job, instance, run_id="1" * 8 + "-0000-4000-8000-" + "0" * 12, tags={}, asset_selection=None,
                             run_config={}, working_directory=tmp_path, parent_run_id=run.run_id)
        assert (again.parent_run_id, again.root_run_id) == (run.run_id, run.run_id)


def test_the_workspace_files_load_the_location_the_runs_name(settings):
    """The one factflow writes for the UI and the daemon, and the repository's for `dagster dev`."""
    import yaml

    from factflow_assets.assets.dagster_private import LOCATION_MODULE, LOCATION_NAME
    from factflow_assets.operations.instance import ensure_dagster_home, workspace_file
    from factflow_assets.settings import PROJECT_ROOT

    ensure_dagster_home(settings)
    for workspace in (workspace_file(settings), PROJECT_ROOT / "workspace.yaml"):
        [entry] = yaml.safe_load(workspace.read_text())["load_from"]
        assert (entry["python_module"]["module_name"], entry["python_module"]["location_name"]) == (LOCATION_MODULE, LOCATION_NAME)
