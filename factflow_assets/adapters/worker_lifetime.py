"""Worker processes die with the process they work for (Linux: the parent-death signal).

A run killed with SIGKILL cannot stop its helpers: the forkserver it started and the workers the
forkserver forked would live on, holding memory, until someone finds them. Each asks the kernel to
kill it when its parent goes: the forkserver imports this module first (it is in every pool's
preload list, so importing it is what sets the signal there), and each worker calls
`die_with_parent` as it starts (a forked child does not inherit the setting).
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """SIGKILL this process when its parent (thread) ends; nothing where Linux is not the kernel."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


if __name__ != "__main__":
    die_with_parent()  # imported by the forkserver as its first preload
