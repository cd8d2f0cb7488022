"""An execution whose creator died at any moment reads `interrupted`, and resume or delete works.

A process that runs an execution itself claims it as it records it (the runner row), before any
Dagster run exists; the run it then creates is NOT_STARTED until it executes it. Killed in between,
it left the execution `queued` for ever: resume refused, wait timed out, delete refused.
"""

import subprocess
import sys

import pytest
from e2e_harness import as_json, run

from factflow_assets.demo.site import demo_site
from factflow_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

_DIE = """
import os, sys
from factflow_assets.operations.launch import StartRequest, prepare_execution, RunPlan, run_in_process
from factflow_assets.operations.instance import dagster_instance
from factflow_assets.settings import Settings
from resources.database import FactflowDatabase

settings = Settings.from_env()
db, instance = FactflowDatabase(settings.database_url), dagster_instance(settings)
record = prepare_execution(settings, db, instance, StartRequest("site_md", {"sitemap_url": sys.argv[1]}, sys.argv[2], None), runs_here=True)
if sys.argv[3] == "before-the-run":
    os._exit(9)
import dagster._core.execution.api as api
api.execute_run = lambda *args, **kwargs: os._exit(9)  # the run exists (NOT_STARTED); the process dies
run_in_process(settings, db, instance, RunPlan.start(record))
"""


@pytest.mark.parametrize("moment", ["before-the-run", "run-not-started"])
def test_an_execution_whose_creator_died_is_interrupted_and_can_be_resumed_or_deleted(pipelines, env, moment):
    with demo_site() as site:
        sitemap = site.url("/sitemap_index.xml")
        died = subprocess.run([sys.executable, "-c", _DIE, sitemap, "orphan", moment], cwd=PROJECT_ROOT, capture_output=True, text=True)
        assert died.returncode == 9, died.stderr
        got = as_json("execution", "get", "orphan")
        assert got["status"] == "interrupted" and "is gone" in got["error"], got
        if moment == "run-not-started":
            assert got["runs"][0]["status"] == "FAILURE"  # the UI no longer shows it waiting
        resumed = as_json("execution", "resume", "orphan")
        assert resumed["status"] == "completed"
        subprocess.run([sys.executable, "-c", _DIE, sitemap, "second", moment], cwd=PROJECT_ROOT, capture_output=True, text=True)
    deleted = run("execution", "delete", "second", "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    assert [e["tag"] for e in as_json("execution", "list")] == ["orphan"]
