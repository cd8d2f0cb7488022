"""What the benchmarks read about processes from /proc: resident memory, children, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional memory of `pid` in KiB: a page shared by n processes counts 1/n in each, so
    the sum over a process tree (Chromium's many processes) is what the tree really holds."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/<pid>/stat after the command name) of every process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue


def process_tree(root: int) -> list[int]:
    """`root` and every process descending from it."""
    children: dict[int, list[int]] = {}
    for pid, fields in _stats():
        children.setdefault(int(fields[1]), []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def session_of_child(parent: int) -> int | None:
    """The session id of a child of `parent` (None when it has none)."""
    for _pid, fields in _stats():
        if int(fields[1]) == parent:
            return int(fields[3])
    return None
