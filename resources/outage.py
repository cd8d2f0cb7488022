"""Waiting out an outage: a call tried again, with backoff, while it fails the way an unreachable
or restarting service makes it fail, within a budget of seconds. `retry` and `retry_async` are
the one backoff loop of the house (a database read, an object write); `wait_out` is the database's.

What counts as an outage: the server refused or dropped the connection (SQLAlchemy's
`OperationalError` and `InterfaceError`, the driver's own, or any error SQLAlchemy marked as a
lost connection), or the pool found every connection it tried dead on checkout (SQLAlchemy's
`DisconnectionError`, and the "This connection is closed" it raises when its reconnection
attempts are exhausted). A constraint violation or a bad statement is not: it is raised at once.

How long to wait depends on who waits: a command an operator typed rides over a dropped
connection (a few seconds, `INTERACTIVE_SECONDS`) and otherwise says in one line that the
database is unreachable; a run waits the whole outage budget (FACTFLOW_DATABASE_OUTAGE_SECONDS)
rather than fail mid-stage. A run says so with `waiting_longer`, for its process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, InvalidRequestError, OperationalError

T = TypeVar("T")
log = logging.getLogger("factflow.outage")

FIRST_DELAY = 0.2
MAX_DELAY = 5.0
#: A blip shorter than this (a dropped connection replaced at once) is not worth a line.
QUIET_SECONDS = 2.0
#: What a command waits: enough to replace connections a failover dropped, not a server's absence.
INTERACTIVE_SECONDS = 3.0
_inside = threading.local()
_run_budget: list[float] = []  # set, for the whole process, while a run runs in it


def budget() -> float:
    """Seconds to wait out an outage now: a run's budget while one runs here, else a command's."""
    return _run_budget[-1] if _run_budget else INTERACTIVE_SECONDS


@contextmanager
def waiting_longer(seconds: float) -> Iterator[None]:
    """While a run runs in this process, every wait (its threads' too) lasts up to `seconds`."""
    _run_budget.append(seconds)
    try:
        yield
    finally:
        _run_budget.pop()


#: What SQLAlchemy's pool raises when every reconnection on checkout failed (its pre-ping and
#: factflow's checkout ping found each new connection dead): the database is away, nothing misused.
CHECKOUT_EXHAUSTED = "This connection is closed"


def is_outage(error: BaseException) -> bool:
    if isinstance(error, (OperationalError, InterfaceError, DisconnectionError)):
        return True
    if isinstance(error, InvalidRequestError) and str(error) == CHECKOUT_EXHAUSTED:
        return True
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated)
    driver = type(error).__module__.partition(".")[0]
    return driver in ("psycopg2", "psycopg") and type(error).__name__ in ("OperationalError", "InterfaceError")


def delays(first: float = FIRST_DELAY, most: float = MAX_DELAY) -> Iterator[float]:
    """The waits between tries: `first`, doubling, at most `most`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


def retry(
    call: Callable[[], T], *, is_fault: Callable[[BaseException], bool], seconds: float,
    first: float = FIRST_DELAY, most: float = MAX_DELAY, on_fault: Callable[[BaseException], None] | None = None,
) -> T:
    """`call()`, tried again while it raises what `is_fault` accepts, until the next wait would
    pass `seconds`; then, or on any other error, the error is raised. `on_fault` hears each fault."""
    started = time.monotonic()
    for delay in delays(first, most):
        try:
            return call()
        except Exception as error:
            if not is_fault(error) or time.monotonic() - started + delay > seconds:
                raise
            if on_fault is not None:
                on_fault(error)
            time.sleep(delay)
    raise AssertionError("delays() never ends")


async def retry_async(
    call: Callable[[], Awaitable[T]], *, is_fault: Callable[[BaseException], bool], seconds: float,
    first: float = FIRST_DELAY, most: float = MAX_DELAY, on_fault: Callable[[BaseException], None] | None = None,
) -> T:
    """`retry` for a coroutine: the event loop goes on while it waits."""
    started = time.monotonic()
    for delay in delays(first, most):
        try:
            return await call()
        except Exception as error:
            if not is_fault(error) or time.monotonic() - started + delay > seconds:
                raise
            if on_fault is not None:
                on_fault(error)
            await asyncio.sleep(delay)
    raise AssertionError("delays() never ends")


def wait_out(call: Callable[[], T], seconds: float | None = None, what: str = "a database call") -> T:
    """`call()`, tried again while it fails with an outage, until `seconds` (default: `budget()`)
    have passed.

    A call made inside another one being waited out is not retried on its own: the outer one
    tries the whole again, so nested calls never multiply the budget."""
    if getattr(_inside, "active", False):
        return call()
    _inside.active = True
    limit = budget() if seconds is None else seconds
    started, said = time.monotonic(), list[bool]()

    def heard(error: BaseException) -> None:
        if not said and time.monotonic() - started >= QUIET_SECONDS:
            log.warning("%s failing (%s); trying again for up to %.0f s", what, str(error).strip().splitlines()[0][:200], limit)
            said.append(True)

    try:
        result = retry(call, is_fault=is_outage, seconds=limit, on_fault=heard)
        if said:
            log.warning("%s works again after %.1f s", what, time.monotonic() - started)
        return result
    finally:
        _inside.active = False
