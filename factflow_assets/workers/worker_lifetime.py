"""Worker processes die with the process they work for (Linux: the parent-death signal).

A run killed with SIGKILL cannot stop its helpers: the forkserver it started and the workers the
forkserver forked would live on, holding memory, until someone finds them. Each asks the kernel to
kill it when its parent goes: the forkserver imports this module first (it is in every pool's
preload list, so importing it is what sets the signal there), and each worker calls
`die_with_parent` as it starts (a forked child does not inherit the setting).

A parent killed before its child set the signal (the forkserver's first ~0.3 s are Python starting
up) would still leave the child behind, so each child also checks, once the signal is set, that
its parent is the one that started it: the process that starts a forkserver names itself in
FORKSERVER_PARENT for it, and the forkserver names itself in WORKER_PARENT for its workers. A child
whose parent is already gone exits at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: Set (to its pid) by a process just while it starts its forkserver, for the forkserver only.
FORKSERVER_PARENT = "FACTFLOW_FORKSERVER_PARENT"
#: Set by the forkserver (to its pid) for the workers it forks.
WORKER_PARENT = "FACTFLOW_WORKER_PARENT"


def die_with_parent(expected_parent: int | None = None) -> None:
    """SIGKILL this process when its parent (thread) ends; exit now if the parent that started
    it (`expected_parent`) is already gone. Nothing where Linux is not the kernel."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent and os.getppid() != expected_parent:
        os._exit(0)  # orphaned before the signal could be set: nobody is left to serve


def worker_parent() -> int | None:
    """In a worker: the pid of the forkserver that forked it."""
    value = os.environ.get(WORKER_PARENT, "")
    return int(value) if value.isdigit() else None


def _as_forkserver() -> None:
    parent = os.environ.pop(FORKSERVER_PARENT, "")
    if not parent.isdigit():
        return  # imported by some other process: it is nobody's helper
    die_with_parent(int(parent))
    os.environ[WORKER_PARENT] = str(os.getpid())


if __name__ != "__main__":
    _as_forkserver()  # imported by the forkserver as its first preload
