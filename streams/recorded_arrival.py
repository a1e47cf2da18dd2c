"""The arrival clock of a recording: what a replay checks client timestamps against.

Live, a report's ``ts`` is checked against when it arrived (the collector's
receive clock, the worker's Kafka record time: ``core.timeutil.ArrivalBound``),
so a client whose clock says 2099 cannot move a watermark a century ahead.
A recording replayed offline (``outagewatch evaluate``, the sweep) has no
arrival times, only arrival order. What stands for "now" there is the newest
event time accepted so far, started at the median of the first ``warmup``
items (a recording whose first line is dated 2099 must not set the clock).
An item too far ahead of it or too old for it is refused, with the same
bound and the same reason the worker would give.

A recording can skip ahead for real (every sender was quiet for ten
minutes): ``jump`` items in a row, all too far ahead, move the clock to
the first of them, and they are all kept. A broken clock's reports come
between the others' and never make such a run.

>>> from types import SimpleNamespace as R
>>> from core.timeutil import ArrivalBound
>>> bound = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)
>>> T = 1_795_323_600_000
>>> items = [R(ts=T + i * 1_000) for i in range(10)]
>>> items.insert(4, R(ts=4_070_908_800_000))   # 2099
>>> items.insert(7, R(ts=978_307_200_000))     # 2001
>>> clock = RecordedArrival(bound, warmup=5, jump=3)
>>> [item.ts - T for item in clock.admit(items)]
[0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]
>>> clock.refused, clock.reasons[0][:39]
(2, 'ts 2099-01-01T00:00:00.000Z is 72 years')
>>> later = [R(ts=T + 3_600_000 + i) for i in range(4)]   # an hour later, everyone: a jump, all kept
>>> len(list(RecordedArrival(bound, warmup=5, jump=3).admit([*items[:3], *later])))
7
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any, TypeVar

from core.timeutil import ArrivalBound

log = logging.getLogger("outagewatch.streams.recorded_arrival")

T = TypeVar("T", bound=Any)

# The reasons kept for the log: the first few say what was wrong.
KEPT_REASONS = 5


class RecordedArrival:
    """Admit a recording's items (anything with a ``ts``) whose event time fits the arrival clock."""

    def __init__(self, bound: ArrivalBound, warmup: int = 1_000, jump: int = 100) -> None:
        if warmup < 1 or jump < 1:
            raise ValueError("recorded arrival warmup and jump must be >= 1")
        self.bound, self.warmup, self.jump = bound, warmup, jump
        self.refused = 0
        self.reasons: list[str] = []
        self.now_ms: int | None = None

    def admit(self, items: Iterable[T]) -> Iterator[T]:
        """The items within the bound of the clock, in their order; the others are counted in ``refused``."""
        items = iter(items)
        first = list(islice(items, self.warmup))
        if not first:
            return
        self.now_ms = int(statistics.median_low(int(item.ts) for item in first))
        ahead: list[T] = []  # a run of items all too far ahead: broken clocks, or a jump of the recording
        for item in chain(first, items):
            ts = int(item.ts)
            why = self.bound.reason(ts, self.now_ms)
            if why is None:
                if ahead:
                    self._refuse_all(ahead)
                    ahead = []
                self.now_ms = max(self.now_ms, ts)
                yield item
            elif ts > self.now_ms:
                ahead.append(item)
                if len(ahead) >= self.jump:
                    log.warning("the recording skips %d s ahead at %d items in a row: kept, the clock moves on",
                                (int(ahead[0].ts) - self.now_ms) // 1000, len(ahead))
                    self.now_ms = max(int(late.ts) for late in ahead)
                    yield from ahead
                    ahead = []
            else:
                self._refuse(why)
        if ahead:
            self._refuse_all(ahead)

    def _refuse_all(self, ahead: list[T]) -> None:
        for item in ahead:
            self._refuse(self.bound.reason(int(item.ts), self.now_ms or 0) or "")

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if len(self.reasons) < KEPT_REASONS:
            self.reasons.append(why)
