"""What the end-to-end tests of executions share: a small site pipeline, CLI calls, lineage reads.

The `pipelines` and `env` fixtures over these live in conftest.py.
"""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

from click.testing import CliRunner
from sqlalchemy import select

from cli.main import cli
from factflow_assets.settings import PROJECT_ROOT
from resources.database import FactflowDatabase
from resources.db_schema import lineage
from resources.storage import ObjectStore

PIPELINE = """\
version: 1
routes:
  - name: scrape
    concurrency: 2
    adapters:
      - type: sitemap_parser
      - type: url_expander
      - type: web_scraper
        config:
          respect_robots: false
          rate_limit:
            initial_rps: 50
            max_rps: 100
      - type: web_content_storage
        config:
          content_types: {content_types}
  - name: markdown
    input:
      route: scrape
    adapters:
      - type: html_to_markdown
        config:
          workers: 1
      - type: smart_segmenter
        config:
          max_tokens: {max_tokens}
          min_tokens: 8
init_message:
  route: scrape
  payload:
    sitemap_url: http://127.0.0.1:1/unset.xml
"""

# A second pipeline whose only route turns stored pages into markdown without links.
REMARK = """\
version: 1
routes:
  - name: plain_markdown
    adapters:
      - type: html_to_markdown
        config:
          workers: 1
          preserve_links: false
init_message:
  route: plain_markdown
  payload: {}
"""


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def as_json(*args, exit_code=0):
    result = run(*args, "--output", "json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def stages(summary) -> dict:
    return {s["stage"]: s for s in summary["stages"]}


def storage_of(store: ObjectStore, execution_id: str, under: str = "") -> dict[str, str]:
    """{key relative to the execution: sha256 from its sidecar} of every complete object its
    stages stored (the dataset, written from them, names the execution in every row: left out)."""
    prefix = f"executions/{execution_id}/"
    return {o.key[len(prefix):]: store.metadata(o.key)["sha256"] for o in store.objects(prefix + under) if not o.key.startswith(prefix + "dataset/")}


def rows(db: FactflowDatabase, execution_id: str, stage: str | None = None) -> list[dict]:
    query = select(lineage).where(lineage.c.execution_id == execution_id)
    if stage:
        query = query.where(lineage.c.stage == stage)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(lineage.c.started_at))]


def path_of(row: dict) -> str:
    return urlsplit(row["metadata"]["url"]).path


def page_requests(site) -> Counter:
    return Counter(site.requests)


def start_in_subprocess(sitemap: str, tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "execution", "start", "site_md", "--set", f"sitemap_url={sitemap}", "--tag", tag],
        cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for(condition, timeout: float = 90.0, what: str = "condition", process: subprocess.Popen | None = None):
    """Poll `condition`; with `process`, fail at once (with its stderr) when it ends first, rather
    than at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the process ended (exit {process.returncode}) before {what}: {stderr[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scraping_midway(db: FactflowDatabase, tag: str):
    """True once the scraper has finished some pages and has others in flight (rows flushed)."""

    def check() -> bool:
        record = db.executions.find_by_tag(tag)
        if record is None:
            return False
        statuses = Counter(r["status"] for r in rows(db, record.id, "web_scraper"))
        return statuses["completed"] >= 3 and statuses["pending"] >= 1

    return check


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children...), from /proc."""
    from pathlib import Path

    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except (OSError, ValueError):
                continue
            if state != "Z":
                parents[int(entry.name)] = int(parent)
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    import os

    living = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                living.add(pid)
    return living
