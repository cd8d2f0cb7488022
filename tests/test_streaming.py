"""Stages streaming together without Dagster (architecture §2.3): hand-offs, backpressure, stop, order.

`StreamRun` runs every selected stage at once; a stage whose upstream runs alongside takes what it
stores through a bounded hand-off. These tests prove the overlap (a downstream stage starts before
its upstream has finished), the bound (a slow stage holds a fast one back: memory does not fill),
that a stop ends every stage without leaving one waiting, and that a stage fed by one that failed
is not called complete.
"""

import asyncio
import threading
import time
from textwrap import dedent

import pytest

from factflow_assets.adapters import (
    ADAPTERS,
    Adapter,
    AdapterConfig,
    Emit,
    Message,
    PermanentError,
)
from factflow_assets.config import validate_text
from factflow_assets.engine.handoff import Handoff
from factflow_assets.engine.output_writes import EMIT_CHUNK, FIRST_EMIT_CHUNK
from factflow_assets.engine.stream import RunControl, StreamRun, stage_sources
from resources.database import FactflowDatabase, dispose_engines
from resources.http import new_http_client
from resources.storage import ObjectStore, stage_prefix
from tests.conftest import executions_exist


class Count(Adapter):
    """One message with a number becomes that many numbered messages."""

    type = "count"

    class config_model(AdapterConfig):
        n: int = 10
        one_by_one: bool = False  # made as a generator (as url_expander makes a sitemap's URLs)

    last_made: float = 0.0
    on_made = staticmethod(lambda i: None)

    async def process(self, message: Message) -> list[Emit]:
        if self.config.one_by_one:
            return self._made()
        return [Emit(body={"i": i}, identity=str(i), slug=f"n{i}") for i in range(self.config.n)]

    def _made(self):
        for i in range(self.config.n):
            Count.last_made = time.monotonic()
            Count.on_made(i)
            yield Emit(body={"i": i}, identity=str(i), slug=f"n{i}")


class Slow(Adapter):
    """Echoes each message after `delay` seconds; remembers when it saw each one."""

    type = "slow"
    seen: list = []

    class config_model(AdapterConfig):
        delay: float = 0.0
        fail: bool = False

    async def process(self, message: Message) -> list[Emit]:
        Slow.seen.append((time.monotonic(), message.id))
        await asyncio.sleep(self.config.delay)
        if self.config.fail:
            raise PermanentError("this stage fails every message")
        return [Emit(body=message.body, content_type=message.content_type)]


PIPELINE = dedent(
    """\
    version: 1
    routes:
      - name: numbers
        concurrency: {upstream_workers}
        adapters:
          - type: count
            config: {{n: {n}, one_by_one: {one_by_one}}}
          - type: slow
            name: fast
            config: {{delay: {fast_delay}, fail: {fail}}}
      - name: later
        input: {{route: numbers}}
        concurrency: 1
        adapters:
          - type: slow
            name: slow
            config: {{delay: {slow_delay}}}
    init_message:
      route: numbers
      payload: {{}}
    """
)


@pytest.fixture
def harness(tmp_path, monkeypatch):
    monkeypatch.setitem(ADAPTERS, "count", Count)
    monkeypatch.setitem(ADAPTERS, "slow", Slow)
    Slow.seen = []
    store = ObjectStore((tmp_path / "storage").as_uri())
    db = FactflowDatabase(f"sqlite:///{tmp_path / 'f.db'}")
    executions_exist(db, "e1")

    def run(n=10, upstream_workers=4, fast_delay=0.0, slow_delay=0.0, fail="false", control=None, one_by_one="false"):
        text = PIPELINE.format(
            n=n, upstream_workers=upstream_workers, fast_delay=fast_delay, slow_delay=slow_delay, fail=fail, one_by_one=one_by_one
        )
        pipeline = validate_text(text, "p").pipeline
        sources = stage_sources(pipeline.stages, "e1", {}, store)
        stream = StreamRun("e1", pipeline.config_hash, "run-1", sources, store, db, new_http_client, control).start()
        outcomes = list(stream.outcomes())
        return {o.stage.name: o for o in outcomes}, [o.stage.name for o in outcomes]

    yield run, store, db
    dispose_engines()


def test_every_stage_runs_at_once_and_reports_in_run_order(harness):
    run, store, db = harness
    outcomes, order = run(n=20)
    assert order == ["count", "fast", "slow"]
    assert {name: (o.summary.messages_in, o.summary.messages_out, o.summary.complete) for name, o in outcomes.items()} == {
        "count": (1, 20, True), "fast": (20, 20, True), "slow": (20, 20, True),
    }
    assert outcomes["slow"].input.endswith("(as numbers/fast stores it, in this run)")
    assert len(store.keys(stage_prefix("e1", "later", "slow"))) == 20
    slow_rows = db.lineage_queries.rows("e1", stage="slow", limit=100)
    fast_rows = {r["id"] for r in db.lineage_queries.rows("e1", stage="fast", limit=100)}
    assert {r["parent_lineage_id"] for r in slow_rows} == fast_rows  # lineage runs through the hand-off


def test_a_downstream_stage_starts_before_its_upstream_has_finished(harness):
    run, _, db = harness
    run(n=30, upstream_workers=2, fast_delay=0.05)
    fast = db.lineage_queries.rows("e1", stage="fast", limit=100)
    slow = db.lineage_queries.rows("e1", stage="slow", limit=100)
    assert min(r["started_at"] for r in slow) < max(r["finished_at"] for r in fast)


def test_outputs_made_one_by_one_are_handed_on_before_the_last_is_made(harness):
    """A 200,000-URL sitemap must not be stored whole before its first page is fetched: the next
    stage takes the first outputs while the rest are still being made, and every one arrives once."""
    run, store, db = harness
    outcomes, _ = run(n=600, one_by_one="true")
    assert Slow.seen and min(seen for seen, _ in Slow.seen) < Count.last_made
    assert {name: o.summary.messages_out for name, o in outcomes.items()} == {"count": 600, "fast": 600, "slow": 600}
    assert len(store.keys(stage_prefix("e1", "numbers", "count"))) == 600
    (row,) = db.lineage_queries.rows("e1", stage="count", limit=10)
    assert row["status"] == "completed" and row["output_count"] == 600


def test_a_stop_while_outputs_are_made_stores_no_more_and_cancels_the_row(harness, monkeypatch):
    run, store, db = harness
    control = RunControl()
    monkeypatch.setattr(Count, "on_made", staticmethod(lambda i: control.stop.set() if i == 300 else None))
    outcomes, _ = run(n=100_000, one_by_one="true", control=control)
    assert not outcomes["count"].summary.complete
    (row,) = db.lineage_queries.rows("e1", stage="count", limit=10)
    assert row["status"] == "cancelled" and "a resume makes them again" in row["error_message"]
    # the chunks made before the stop (16, then 256: the stop came during the third); none after it
    assert len(store.keys(stage_prefix("e1", "numbers", "count"))) == FIRST_EMIT_CHUNK + EMIT_CHUNK


def test_a_stage_whose_adapter_cannot_open_fails_at_once_saying_so(harness, monkeypatch):
    async def never_opens(self):
        await asyncio.sleep(3600)

    monkeypatch.setattr(Slow, "open", never_opens)
    monkeypatch.setattr("factflow_assets.engine.stage_runner.ADAPTER_OPEN_TIMEOUT", 0.5)
    run, _, _ = harness
    outcomes, _ = run(n=3)
    assert not outcomes["fast"].summary.complete and "slow did not open within 0.5 s" in str(outcomes["fast"].error)


def test_a_slow_stage_holds_a_fast_one_back(harness, monkeypatch):
    """The hand-off never holds more than its capacity, and the fast stage waits for the slow one
    instead of finishing far ahead (memory would fill with pages on a real site)."""
    deepest: dict[int, tuple[int, int]] = {}  # per hand-off: (capacity, most items held)
    put = Handoff.put

    async def measured_put(self, item):
        done = await put(self, item)
        deepest[id(self)] = (self.capacity, max(deepest.get(id(self), (0, 0))[1], len(self)))
        return done

    monkeypatch.setattr(Handoff, "put", measured_put)
    run, _, db = harness
    outcomes, _ = run(n=200, upstream_workers=8, slow_delay=0.01)
    assert outcomes["slow"].summary.messages_in == 200
    assert len(deepest) == 2 and all(0 < most <= capacity for capacity, most in deepest.values())
    assert (8, 8) in deepest.values()  # the slow stage's hand-off (2 per worker, at least 8) filled up and held
    fast = db.lineage_queries.rows("e1", stage="fast", limit=1000)
    slow_started = sorted(r["started_at"] for r in db.lineage_queries.rows("e1", stage="slow", limit=1000))
    # when the fast stage finished its last message, the slow one had started most of its own:
    # at most a hand-off and the fast stage's workers ahead of it
    last_fast = max(r["finished_at"] for r in fast)
    assert sum(start <= last_fast for start in slow_started) >= 200 - 8 - 8 - 1


def test_a_stop_ends_every_stage_and_none_is_complete(harness):
    run, store, _ = harness
    control = RunControl()
    timer = threading.Timer(0.5, control.stop.set)  # as the heartbeat does on a cancel
    timer.start()
    try:
        outcomes, _ = run(n=100, upstream_workers=2, slow_delay=0.05, control=control)
    finally:
        timer.cancel()
    slow = outcomes["slow"].summary
    assert not slow.complete and 0 < slow.messages_in < 100
    assert outcomes["count"].summary.complete  # it had finished before the stop
    stored = len(store.keys(stage_prefix("e1", "later", "slow")))
    assert stored == slow.messages_out and slow.stale_deleted == 0  # a stopped stage deletes nothing


def test_a_stage_fed_by_one_whose_every_message_failed_sees_nothing(harness):
    run, _, _ = harness
    outcomes, _ = run(n=5, fail="true")
    assert outcomes["fast"].summary.all_failed and outcomes["fast"].summary.complete
    assert outcomes["slow"].summary.messages_in == 0


def test_handoff_waits_when_full_gives_up_on_stop_and_ends_when_closed():
    async def main():
        stop = threading.Event()
        handoff: Handoff[int] = Handoff(2, stop)
        assert await handoff.put(1) and await handoff.put(2)
        blocked = asyncio.ensure_future(handoff.put(3))
        await asyncio.sleep(0.05)
        assert not blocked.done()  # full: the producer waits
        assert await handoff.get() == 1
        assert await blocked is True and len(handoff) == 2
        stopped = asyncio.ensure_future(handoff.put(4))
        stop.set()  # set from another thread in real runs: noticed within a poll
        assert await asyncio.wait_for(stopped, 1) is False
        handoff.close()
        assert [await handoff.get(), await handoff.get(), await handoff.get()] == [2, 3, None]

    asyncio.run(main())
