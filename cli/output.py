"""Printing results: readable tables by default, JSON (and only JSON on stdout) with `--output json`.

Text that came from a website, a tag or a payload is data, never instructions to the terminal:
the consoles here read no markup, and every string shown (table cells, lines, notes) has its
control characters written out visibly (`\x1b`, `\n`), so no escape sequence, window title or
hyperlink of a page's reaches the terminal. Emphasis is ours only: `rich.text.Text` pieces built
by `styled`, `bold` and `line`. JSON keeps the data exact.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Readable table, or JSON for scripts.",
)


#: Width of tables written to a pipe or file: wide enough that rows stay one line for grep.
PIPE_WIDTH = 240


#: One colour per state word, whatever has the state: an execution, a lineage row, a route, a
#: health probe. Green is done and well, red failed, cyan at work, blue waiting its turn, yellow
#: held or passed over, magenta cut short.
STATE_COLOURS = {
    "completed": "green", "ok": "green", "healthy": "green",
    "failed": "red", "unhealthy": "red",
    "running": "cyan", "pending": "cyan",
    "queued": "blue",
    "cancelled": "yellow", "skipped": "yellow", "paused": "yellow", "degraded": "yellow", "warning": "yellow",
    "interrupted": "magenta",
}


#: C0 and C1 controls, and the bidirectional controls that reorder what follows them on screen
#: (U+202E turns `txt.exe` into `exe.txt`).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(value: Any) -> str:
    """`value` as text with every control character written out (`\x1b`, `\n`): what reaches the
    terminal is exactly what the data says, and nothing the terminal would act on."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or _escape(ord(m.group())), str(value))


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def styled(state: str) -> Text:
    """A state word in its colour."""
    return Text(visible(state), style=STATE_COLOURS.get(state, "white"))


def bold(value: Any) -> Text:
    return Text(visible(value), style="bold")


def dim(value: Any) -> Text:
    return Text(visible(value), style="dim")


def line(*parts: Any) -> Text:
    """One line from pieces: `Text` pieces keep their style, anything else is data, shown visibly."""
    return Text.assemble(*(part if isinstance(part, Text) else visible(part) for part in parts))


def stdout() -> Console:
    console = Console(highlight=False, markup=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, width=PIPE_WIDTH)
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False, markup=False)


def note(text: str) -> None:
    """A remark for the operator on stderr, after what stdout already holds."""
    sys.stdout.flush()
    stderr().print(line(text), soft_wrap=True)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else str(value)


def print_json(data: Any, indent: int | None = 2) -> None:
    """`data` as JSON on stdout; timestamps in ISO 8601."""
    click.echo(json.dumps(data, indent=indent, default=_jsonable, ensure_ascii=False))


def make_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in NUMERIC_COLUMNS else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text("") if value is None else value if isinstance(value, Text) else Text(visible(value)) for value in row))
    return table


NUMERIC_COLUMNS = {
    "DONE", "UNCHANGED", "FAILED", "SKIPPED", "IN FLIGHT", "COMPLETED", "COUNT", "SIZE", "DURATION", "MESSAGES", "OBJECTS",
    "ATTEMPT", "ATTEMPTS", "PENDING", "MEAN", "P50", "P95", "MAX", "TOTAL", "SPAN", "SUPERSEDED ROWS", "DELETED OBJECTS",
    "LAST HOUR", "FAILED LAST HOUR", "MSG/S LAST MINUTE", "MSG/S OVERALL", "TIME",
}


def format_time(value) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else value.isoformat()
    return text.replace("T", " ")[:19]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}ms" if value < 10_000 else format_duration(value / 1000)


def format_size(size: int | None) -> str:
    if size is None:
        return ""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size}B" if unit == 0 else f"{value:.1f}{SIZE_UNITS[unit]}"


SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
