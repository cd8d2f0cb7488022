"""`factflow lineage list|get|chain|children|failures|batch|stats`: what happened to each message.

Where an ID is asked, a lineage id, a message id, a storage key or a page's URL works
(`lookup.lineage_row`; with --execution where the page is in several executions).
"""

from __future__ import annotations

import click
from rich.text import Text
from rich.tree import Tree

from resources.errors import NotFoundError
from resources.statuses import LINEAGE_STATUSES

from .environment import Environment, pass_environment
from .lookup import check_scope, lineage_row
from .output import bold, dim, format_ms, format_time, line, make_table, note, output_option, print_json, stdout, styled, visible

ROW_COLUMNS = ("ID", "STAGE", "MESSAGE", "STATUS", "ATTEMPT", "STARTED", "DURATION", "DETAIL")

execution_filter = click.option("--execution", "-e", help="Execution id or tag (narrows a message id to one execution).")


@click.group()
def lineage() -> None:
    """Lineage: one row per message per adapter invocation."""


def error_text(row: dict) -> str:
    return f"{row['error_class']}: {row['error_message']}"


def url_of(row: dict) -> str:
    return (row.get("metadata") or {}).get("url", "")


def detail(row: dict) -> str:
    """What an operator wants next to a row: its error when it failed, else where it came from."""
    if row["status"] == "failed":
        return error_text(row)
    if row["status"] == "skipped" and row.get("error_message"):
        return f"skipped: {row['error_message']}"
    return url_of(row)


def row_cells(row: dict) -> tuple:
    superseded = " (superseded)" if row["superseded"] else ""
    return (
        row["id"], f"{row['route']}/{row['stage']}", row["message_id"], styled(row["status"]) + superseded,
        row["attempt"], format_time(row["started_at"]), format_ms(row["duration_ms"]), detail(row),
    )


def print_rows(rows: list[dict], output: str) -> None:
    if output == "json":
        print_json(rows)
    else:
        stdout().print(make_table(ROW_COLUMNS, [row_cells(r) for r in rows]))


@lineage.command("list")
@click.option("--execution", "-e", "execution", required=True, help="Execution id or tag.")
@click.option("--status", type=click.Choice(LINEAGE_STATUSES))
@click.option("--adapter", help="Only rows of this adapter type.")
@click.option("--route", help="Only rows of this route.")
@click.option("--url", help="Only rows of this page (every stage its message went through).")
@click.option("--superseded", "include_superseded", is_flag=True, help="Also rows replaced by a replay or by a later attempt.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@output_option
@pass_environment
def list_command(env: Environment, execution: str, status, adapter, route, url, include_superseded, limit, offset, output) -> None:
    """Lineage rows of an execution, in the order they started."""
    record = env.db.executions.resolve(execution)
    check_scope(env, record, route=route, adapter=adapter)
    rows = env.db.lineage_queries.rows(
        record.id, status=status, adapter_type=adapter, route=route, include_superseded=include_superseded, url=url, limit=limit, offset=offset
    )
    print_rows(rows, output)


@lineage.command("get")
@click.argument("id")
@execution_filter
@output_option
@pass_environment
def get_command(env: Environment, id: str, execution: str | None, output: str) -> None:
    """Every field of one lineage row, traceback included."""
    row = lineage_row(env, id, execution)
    if output == "json":
        print_json(row)
        return
    fields = [(name, _field_text(name, value)) for name, value in row.items() if name != "error_traceback"]
    console = stdout()
    console.print(make_table(("FIELD", "VALUE"), fields))
    if row["error_traceback"]:
        console.print()
        console.print(bold("traceback"))
        for traceback_line in row["error_traceback"].rstrip().split("\n"):  # its lines, each shown visibly
            console.print(line(traceback_line))


def _field_text(name: str, value) -> str | Text:
    if name == "status":
        return styled(value)
    if name == "output_keys" and value:
        return "\n".join(value)
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


@lineage.command("chain")
@click.argument("id")
@execution_filter
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000), help="At most this many descendants.")
@click.option("--current", is_flag=True, help="Only the live chain: no descendant a replay or a later attempt superseded.")
@output_option
@pass_environment
def chain_command(env: Environment, id: str, execution: str | None, limit: int, current: bool, output: str) -> None:
    """A row with all its ancestors and descendants, drawn as a tree. Superseded rows are marked,
    and rows of another execution (a replay's child) name it."""
    row = lineage_row(env, id, execution)
    rows = env.db.lineage_queries.chain(row["id"], max_descendants=limit)
    descendants = sum(1 for r in rows if r["depth"] > 0)
    if current:
        rows = live_chain(rows)
    if output == "json":
        print_json({"lineage_id": row["id"], "rows": rows})
        return
    stdout().print(chain_tree(rows, row["id"]))
    if descendants >= limit:
        note(f"showing the first {limit} descendants; --limit shows more")


def live_chain(rows: list[dict]) -> list[dict]:
    """The ancestors and the row, then the descendants that are current (not superseded) and
    descend from current ones: what the stored objects are now. Rows come sorted by depth."""
    kept: set[str] = set()
    live = []
    for row in rows:
        if row["depth"] <= 0 or (not row["superseded"] and row["parent_lineage_id"] in kept):
            kept.add(row["id"])
            live.append(row)
    return live


def chain_tree(rows: list[dict], focus_id: str) -> Tree:
    """Ancestors as a single line from the init message down to the row, then its descendants.

    Rows come sorted by depth, so every parent is placed before its children."""
    nodes: dict[str, Tree] = {}
    tree: Tree | None = None
    line_end: Tree | None = None
    home = next((row["execution_id"] for row in rows if row["id"] == focus_id), None)
    for row in rows:
        label = _chain_label(row, focus=row["id"] == focus_id, elsewhere=row["execution_id"] != home)
        if tree is None:
            tree = node = Tree(label, guide_style="dim")
        elif row["depth"] <= 0:  # one ancestor per depth: a single line down to the row
            assert line_end is not None  # the first row (depth <= 0) set it
            node = line_end.add(label)
        else:
            node = nodes[row["parent_lineage_id"]].add(label)
        nodes[row["id"]] = node
        if row["depth"] <= 0:
            line_end = node
    assert tree is not None, "a chain holds at least its own row"
    return tree


def _chain_label(row: dict, focus: bool, elsewhere: bool) -> Text:
    label = line(
        f"{row['route']}/{row['stage']}  ", styled(row["status"]), Text(" superseded", style="dim") if row["superseded"] else "",
        f"  {row['message_id']}  ", dim(f"{row['id']}  {format_ms(row['duration_ms'])}"),
    )
    if elsewhere:
        label.append_text(line("  ", Text(f"(execution {row['execution_id']})", style="cyan")))
    if row["status"] == "failed":
        label.append_text(line("  ", Text(visible(error_text(row)), style="red")))
    if focus:
        label.append("  ◀")
        label.stylize("bold")
    return label


@lineage.command("children")
@click.argument("id")
@execution_filter
@output_option
@pass_environment
def children_command(env: Environment, id: str, execution: str | None, output: str) -> None:
    """The invocations that took this row's outputs as their input."""
    row = lineage_row(env, id, execution)
    children = env.db.lineage_queries.children(row["id"])
    if not children and output != "json":
        note(f"no children: no invocation took the outputs of {row['id']} ({row['route']}/{row['stage']}) as its input")
        return
    print_rows(children, output)


@lineage.command("failures")
@click.option("--execution", "-e", help="Only this execution (id or tag); otherwise every execution, newest first.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@output_option
@pass_environment
def failures_command(env: Environment, execution: str | None, limit: int, output: str) -> None:
    """Failed invocations with their error: of one execution oldest first, else the newest."""
    execution_id = env.db.executions.resolve(execution).id if execution else None
    rows = env.db.lineage_queries.failures(execution_id, limit=limit)
    if output == "json":
        print_json(rows)
        return
    cells = [
        (r["id"], r["execution_id"], f"{r['route']}/{r['stage']}", r["adapter_type"], format_time(r["started_at"]),
         error_text(r), url_of(r))
        for r in rows
    ]
    stdout().print(make_table(("ID", "EXECUTION", "STAGE", "ADAPTER", "TIME", "ERROR", "URL"), cells))


@lineage.command("batch")
@click.argument("batch_id")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@output_option
@pass_environment
def batch_command(env: Environment, batch_id: str, limit: int, output: str) -> None:
    """The invocations of one batch (one run of one stage)."""
    rows = env.db.lineage_queries.batch(batch_id, limit=limit)
    if not rows:
        raise NotFoundError(f"no lineage rows in batch {batch_id!r}")
    print_rows(rows, output)


STATS_COLUMNS = ("ROUTE", "STAGE", "ADAPTER", "COUNT", "COMPLETED", "UNCHANGED", "FAILED", "SKIPPED", "PENDING", "MEAN", "P50", "P95", "MAX", "SPAN")


@lineage.command("stats")
@click.option("--execution", "-e", "execution", required=True, help="Execution id or tag.")
@output_option
@pass_environment
def stats_command(env: Environment, execution: str, output: str) -> None:
    """Per route and stage: invocations by status, and how long they took."""
    record = env.db.executions.resolve(execution)
    rows = env.db.lineage_queries.stats(record.id)
    if output == "json":
        print_json(rows)
        return
    cells = [
        (r["route"], r["stage"], r["adapter_type"], r["count"], r["completed"], r["unchanged"], r["failed"], r["skipped"], r["pending"],
         format_ms(r["mean_ms"]), format_ms(r["p50_ms"]), format_ms(r["p95_ms"]), format_ms(r["max_ms"]),
         "" if r["span_s"] is None else f"{r['span_s']:.2f}s")
        for r in rows
    ]
    stdout().print(make_table(STATS_COLUMNS, cells))
