"""The single-flight cache, with an injected clock and a fake source: exact counts of reads."""

from __future__ import annotations

import asyncio
import threading

from dashboards.status.cache import SnapshotCache, View
from dashboards.status.model import Snapshot


class Source:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def load(self, now: int) -> Snapshot:
        self.calls += 1
        self.gate.wait(5)
        if self.fail:
            raise ConnectionRefusedError("clickhouse down")
        return Snapshot(as_of=now, components=(), incidents=())


def visit(cache: SnapshotCache, n: int) -> list[View]:
    async def go() -> list[View]:
        return list(await asyncio.gather(*(cache.get() for _ in range(n))))
    return asyncio.run(go())


def test_one_read_per_period_whatever_the_crowd() -> None:
    source, now = Source(), [0.0]
    cache = SnapshotCache(source.load, ttl=15, wait_seconds=2, clock=lambda: now[0])
    for step in range(10):
        now[0] = step * 5.0  # 45 s in 5-s steps: reads at 0, 15, 30, 45
        visit(cache, 200)
    assert source.calls == 4


def test_failure_keeps_the_last_good_page_and_retries_once_a_period() -> None:
    source, now = Source(), [0.0]
    cache = SnapshotCache(source.load, ttl=15, wait_seconds=2, clock=lambda: now[0])
    assert visit(cache, 1)[0].stale is False
    source.fail = True
    now[0] = 20.0
    views = visit(cache, 100)
    assert {v.stale for v in views} == {True} and {v.snapshot.as_of for v in views if v.snapshot} == {0}
    assert "ConnectionRefusedError" in views[0].reason
    now[0] = 25.0
    visit(cache, 100)
    assert source.calls == 2  # no retry storm while down
    source.fail = False
    now[0] = 36.0
    view = visit(cache, 1)[0]
    assert view.stale is False and view.snapshot is not None and view.snapshot.as_of == 36


def test_a_hung_read_serves_stale_and_starts_no_second_read() -> None:
    source, now = Source(), [0.0]
    cache = SnapshotCache(source.load, ttl=1, wait_seconds=0.2, clock=lambda: now[0])
    visit(cache, 1)
    source.gate.clear()
    now[0] = 5.0

    async def go() -> tuple[list[View], int]:
        first = await asyncio.gather(*(cache.get() for _ in range(20)))
        now[0] = 9.0  # several periods later, the hung read still holds the flight
        second = await asyncio.gather(*(cache.get() for _ in range(20)))
        calls = source.calls
        source.gate.set()
        await asyncio.sleep(0.1)
        return [*first, *second], calls

    views, calls = asyncio.run(go())
    assert calls == 2 and all(v.stale and v.snapshot is not None for v in views)
    assert "not answered" in views[0].reason


def test_no_snapshot_before_the_first_good_read() -> None:
    source = Source()
    source.fail = True
    cache = SnapshotCache(source.load, ttl=15, wait_seconds=1, clock=lambda: 0.0)
    view = visit(cache, 3)[0]
    assert view.snapshot is None and view.stale
