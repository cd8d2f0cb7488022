"""The README's worked example: a user's own asset on the dataset, run by the daemon by itself.

examples/search_index.py hangs a SQLite FTS5 index on `[site_md, "dataset"]` with an eager
automation condition. With the Dagster daemon serving factflow's instance and both code locations
(examples/workspace.yaml), an execution started from the CLI is indexed without anyone asking.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_harness import as_json

from factflow_assets.demo.site import demo_site
from factflow_assets.operations.instance import ensure_dagster_home
from factflow_assets.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

EXAMPLES = PROJECT_ROOT / "examples"


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"waited {timeout:g} s for {what}; the daemon said:\n{log.read_text()[-4000:]}")


def test_the_search_index_example_is_built_by_the_daemon_after_an_execution(pipelines, env, tmp_path):
    settings = Settings.from_env()
    ensure_dagster_home(settings)
    index = tmp_path / "search.db"
    log = tmp_path / "daemon.log"
    daemon_env = {
        **os.environ, "DAGSTER_HOME": str(settings.dagster_home), "SEARCH_INDEX_PIPELINE": "site_md",
        "SEARCH_INDEX_PATH": str(index), "SEARCH_INDEX_EVERY_SECONDS": "2",
    }
    with log.open("w") as output:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(EXAMPLES / "workspace.yaml")],
            cwd=EXAMPLES, env=daemon_env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_signals,
        )
    try:
        ticked = "Finished auto-materialization tick for search_index_automation"
        _wait(lambda: log.read_text().count(ticked) >= 1, 120, "the example's automation to tick once", log)
        with demo_site() as site:
            done = as_json("execution", "start", "site_md", "--set", f"sitemap_url={site.url('/sitemap_index.xml')}")
        assert done["status"] == "completed"

        def indexed() -> bool:
            if not index.exists():
                return False
            try:
                with sqlite3.connect(index) as db:
                    return db.execute("SELECT count(*) FROM segments WHERE execution = ?", (done["id"],)).fetchone()[0] > 0
            except sqlite3.OperationalError:
                return False  # being written

        _wait(indexed, 180, "the daemon to build the search index", log)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
    with sqlite3.connect(index) as db:
        found = db.execute("SELECT url, heading FROM segments WHERE segments MATCH 'retention' ORDER BY rank").fetchall()
    assert found and all(url.startswith("http://127.0.0.1:") for url, _ in found)
