"""The live per-stage progress display, drawn from lineage counts while an execution runs.

It polls the factflow database, not the running code, so it works the same for a run in this
process and for one the daemon launched elsewhere (`execution wait`).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live

from .output import make_table

STAGE_COLUMNS = ("ROUTE", "STAGE", "DONE", "UNCHANGED", "FAILED", "SKIPPED", "IN FLIGHT")


def stage_rows(progress: list[dict], paused: frozenset[str] = frozenset()) -> list[tuple]:
    """Table rows of per-stage counts; a paused route says so beside its name."""
    return [
        (p["route"] + (" (paused)" if p["route"] in paused else ""), p["stage"], p["completed"], p["unchanged"], p["failed"], p["skipped"], p["in_flight"])
        for p in progress
    ]


@contextmanager
def live_progress(env, execution_id: str, enabled: bool = True):
    """Show a refreshing stage table on stderr while the body runs (only on a terminal).

    Dagster captures a step's output by pointing file descriptor 2 at a log file while the step
    runs; the display writes to a duplicate of the terminal's descriptor taken beforehand, so it
    keeps reaching the operator.
    """
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from factflow_assets.engine.executions import (
        frozen_pipeline,  # imports Dagster: only when shown
    )
    from factflow_assets.operations.stage_counts import stage_progress

    record = env.db.executions.get(execution_id)
    pipeline = frozen_pipeline(env.db, record.config_hash, record.pipeline)  # once, not at every refresh

    def render():
        paused = frozenset(route for route, state in env.db.route_states.all().items() if state.state == "paused")
        title = f"execution {execution_id}" + ("  (paused routes wait: factflow pipeline resume ROUTE)" if paused & set(pipeline.route_names()) else "")
        return make_table(STAGE_COLUMNS, stage_rows(stage_progress(env.db, record, pipeline), paused), title=title)

    with os.fdopen(os.dup(sys.stderr.fileno()), "w") as terminal:
        console = Console(file=terminal, force_terminal=True, highlight=False, markup=False)
        with Live(get_renderable=render, console=console, refresh_per_second=2, transient=True, redirect_stdout=False, redirect_stderr=False):
            yield


@contextmanager
def transfer_progress(description: str, enabled: bool = True):
    """A progress bar on stderr (only on a terminal), yielded as the fsspec callback that drives it."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from fsspec.callbacks import Callback
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)

        class FilesDone(Callback):
            def call(self, *args, **kwargs):
                progress.update(task, total=self.size, completed=self.value)

        yield FilesDone()
