"""`factflow export E`: an execution's dataset, or the changefeed from an earlier execution, for an index.

Thin over `factflow_assets.dataset`: the dataset an execution's run wrote (written now, from what
its stages hold, if the run predates datasets), as Parquet, JSON Lines or CSV, to a file or stdout.
"""

from __future__ import annotations

import os
import sys

import click

from .environment import Environment, pass_environment
from .output import note


@click.command("export")
@click.argument("execution_id")
@click.option("--what", type=click.Choice(["segments", "pages"]), default="segments", show_default=True, help="Which table.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--changes-since", "changes_since", metavar="E0", help="Only what changed since execution E0: records with op upsert or delete.")
@click.option("--output", "-o", "output", default="-", show_default=True, help="A file, or - for stdout.")
@click.option("--include-duplicates", is_flag=True, help="Also the pages (and their segments) that repeat another page.")
@pass_environment
def export(env: Environment, execution_id: str, what: str, fmt: str, changes_since: str | None, output: str, include_duplicates: bool) -> None:
    """Export an execution's segments or pages (or the changefeed since E0) for a search or vector index.

    Pages that repeat another (its canonical, the same text, nearly the same text) are left out
    unless --include-duplicates. Ids are stable across executions (a page's from its URL, a segment's from its page and
    position): applying E0's export and then `--changes-since E0` gives exactly E's export.
    """
    from factflow_assets.dataset.export import export_batches, write_export

    record = env.db.executions.resolve(execution_id)
    baseline = env.db.executions.resolve(changes_since).id if changes_since else None
    for needed in filter(None, (record, env.db.executions.get(baseline) if baseline else None)):
        _ensure_dataset(env, needed)
    schema, batches = export_batches(env.store, record.id, what, baseline, include_duplicates)
    if output == "-":
        if fmt == "parquet" and sys.stdout.isatty():
            raise click.ClickException("Parquet is binary: give --output FILE, or pipe stdout")
        try:
            count = write_export(sys.stdout.buffer, schema, batches, fmt)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader had enough (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
    else:
        with open(output, "wb") as out:
            count = write_export(out, schema, batches, fmt)
    note(f"{count} {'change(s)' if baseline else what} of {record.id} written to {'stdout' if output == '-' else output}")


def _ensure_dataset(env: Environment, record) -> None:
    """An execution whose runs predate datasets gets one now, from what its stages hold."""
    from factflow_assets.dataset.build import dataset_stages, write_dataset
    from factflow_assets.dataset.schema import PAGES, dataset_key
    from factflow_assets.engine.executions import frozen_pipeline
    from resources.errors import FactflowError

    if env.store.exists(dataset_key(record.id, PAGES)):
        return
    pipeline = frozen_pipeline(env.db, record.config_hash, record.pipeline)
    if dataset_stages(pipeline) is None:
        raise FactflowError(f"execution {record.id} of {record.pipeline} makes no markdown: it has no dataset to export")
    note(f"writing the dataset of {record.id} from what its stages hold")
    write_dataset(env.db, env.store, record.id, pipeline)
