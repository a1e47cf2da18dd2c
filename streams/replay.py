"""Offline replay: recorded reports or metric samples in, closed windows out.

The same engine and reducers as the Faust worker (one partition, a dict as
the store), so ``outagewatch evaluate`` and the tests see exactly what
production computes. Input is taken in the given order, which stands for the
order of arrival: the watermark is the highest event time seen so far, a
window closes once the watermark passes its end by ``lateness_s``, and a
report for a window already closed is counted in ``late_reports`` of its
room's current window. At the end of the input every open window closes.

Output order: whenever windows close, window by window: the room windows
(by room), then the region/platform/app_version/global windows of the same
instant (by ``scope|key``).

>>> from core.schemas import ClientReport
>>> T = 1_795_323_600_000
>>> def r(i, ts, room, kind="heartbeat", **kw):
...     return ClientReport(report_id=f"r{i}", ts=ts, client_id=f"c{i % 3}", room_id=room, kind=kind,
...                         platform="web", **kw)
>>> reports = [r(0, T, "a"), r(1, T + 1, "a"), r(2, T + 2, "b", "error", error_code="crash"),
...            r(3, T + 25_000, "a"),      # watermark passes T+20s: the first window closes
...            r(4, T + 3, "a")]           # late: counted in room a's window at the watermark
>>> for h in windows(reports, window_s=10, lateness_s=10):
...     print(h.scope, h.key, h.window_start - T, h.listeners, h.errors, h.late_reports)
room a 0 2.0 0.0 0
room b 0 0.0 1.0 0
app_version unknown 0 2.0 1.0 0
global all 0 2.0 1.0 0
platform web 0 2.0 1.0 0
region unknown 0 2.0 1.0 0
room a 20000 1.0 0.0 1
app_version unknown 20000 1.0 0.0 1
global all 20000 1.0 0.0 1
platform web 20000 1.0 0.0 1
region unknown 20000 1.0 0.0 1
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from core.schemas import ClientReport, MetricSample, RoomHealth, ServiceHealth
from core.timeutil import ManualClock
from streams.engine import DictStore, PartitionWindows, Reducer, WindowPolicy
from streams.metrics import SERVICE_METRICS
from streams.scopes import Progress, ScopeMerger
from streams.windows import ROOM_WINDOWS


def windows(reports: Iterable[ClientReport], window_s: int = 10, lateness_s: int = 10,
            complete_only: bool = False) -> Iterator[RoomHealth]:
    """Every closed room, region, platform, app_version and global window of ``reports``.

    ``complete_only``: not the windows the input ends inside of (see ``PartitionWindows.close_due``).
    """
    yield from _replay(ROOM_WINDOWS, reports, window_s, lateness_s, complete_only)


def service_windows(samples: Iterable[MetricSample], window_s: int = 10,
                    lateness_s: int = 10, complete_only: bool = False) -> Iterator[ServiceHealth]:
    """Every closed service and cluster window of ``samples`` (``complete_only``: as for ``windows``)."""
    yield from _replay(SERVICE_METRICS, samples, window_s, lateness_s, complete_only)


def _replay(reducer: Reducer[Any, Any, Any], items: Iterable[Any], window_s: int, lateness_s: int,
            complete_only: bool = False) -> Iterator[Any]:
    policy = WindowPolicy(window_ms=window_s * 1000, lateness_ms=lateness_s * 1000)
    engine: PartitionWindows[Any, Any, Any] = PartitionWindows(reducer, 0, policy, DictStore(), ManualClock(0))
    merger = ScopeMerger(reducer, sources=1, window_ms=policy.window_ms)
    for offset, item in enumerate(items):
        engine.add_message((item,), offset)
        if engine.pending:
            yield from _publish(engine, merger)
    engine.close_due(final=True, complete_only=complete_only)
    yield from _publish(engine, merger)


def _publish(engine: PartitionWindows[Any, Any, Any], merger: ScopeMerger) -> Iterator[Any]:
    published: list[Any] = []
    for closed in engine.take_pending():
        published.extend(closed.results)
        published.extend(merger.apply(Progress(partition=0, closed_upto=closed.closed_upto, windows=closed.partials)))
        engine.mark_closed(closed)
    engine.flush()
    # Several windows closing at once (the end of the input, a jump in event time) come out window by
    # window: a window end's rooms and aggregates together, as ``detection.replay_alerts`` batches them.
    published.sort(key=lambda window: window.window_end)
    yield from published
