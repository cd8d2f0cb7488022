"""One transaction across stores: a store method given `conn` writes in it, without it in its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def writing(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """`conn` (a transaction someone else began and will commit), else a transaction of our own."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own
