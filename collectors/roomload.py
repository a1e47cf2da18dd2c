"""Which rooms send the most reports right now: exponentially decayed counts in a bounded table.

Every request's reports are counted per room (one ``Counter`` over their
``room_id``s, in C) and added to a table of decayed counts: a report counts
1 when it arrives and half as much every ``half_life_ms`` after, on the
injected clock. For a room sending ``r`` reports/s steadily the decayed count
settles at ``r * half_life / ln 2``, so the table gives both a room's rate
and its share of everything counted (the total decays the same way).

Decay costs nothing per request: counts are stored multiplied by
``2 ** (age / half_life)`` of a moving epoch, so adding is one multiply and
comparing two counts needs no decay at all; the epoch moves (one pass over
the table) once the factor passes ``2 ** 30``.

The table holds at most ``2 * max_rooms`` rooms: past that it keeps the
``max_rooms`` largest (a room forgotten this way starts again from zero,
which only underestimates small rooms; the total keeps everything). A room
over ``share`` of the total is *flooding*: ``add`` names the flooding rooms
of the reports it was given.

>>> from core.schemas import ClientReport
>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> load = RoomLoad(half_life_ms=1000, share=0.25, max_rooms=64, clock=clock)
>>> def reports(room, n):
...     return [ClientReport(report_id=f"{room}{i}", ts=1_795_323_600_000, client_id="c", room_id=room, kind="error",
...                          error_code="crash", platform="ios") for i in range(n)]
>>> for step in range(1000):  # 10 s: 100 reports/s from one room, 900/s from another
...     flooding = load.add(reports("quiet", 1) + reports("loud", 9))
...     clock.advance(10)
>>> sorted(flooding), round(load.share("loud"), 3), round(load.rate_per_second("loud"), -1)
(['loud'], 0.9, 900.0)
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Sequence

from core.schemas import ClientReport
from core.timeutil import Clock

_ROOM = operator.attrgetter("room_id")
# The growth factor past which the epoch moves (all counts divided by it): far from float precision limits.
_REBASE_AT = 2.0**30


class RoomLoad:
    """Decayed report counts per room (the heavy hitters), on an injected clock."""

    def __init__(self, half_life_ms: int, share: float, max_rooms: int, clock: Clock) -> None:
        if half_life_ms <= 0 or max_rooms <= 0:
            raise ValueError("half_life_ms and max_rooms must be positive")
        self.half_life_ms = half_life_ms
        self.share_bound = share
        self.max_rooms = max_rooms
        self._clock = clock
        self._epoch_ms = clock.now_ms()
        # Counts in units of the epoch: a count stored at growth g stands for count / g now.
        self._counts: dict[str, float] = {}
        self._total = 0.0
        # Seconds a steady rate is multiplied by in a decayed count: half_life / ln 2.
        self._tau_s = half_life_ms / 1000 / math.log(2)

    def __len__(self) -> int:
        return len(self._counts)

    def _growth(self, now_ms: int) -> float:
        growth: float = 2.0 ** ((now_ms - self._epoch_ms) / self.half_life_ms)
        if growth > _REBASE_AT:
            self._counts = {room: value / growth for room, value in self._counts.items()}
            self._total /= growth
            self._epoch_ms, growth = now_ms, 1.0
        return growth

    def add(self, reports: Sequence[ClientReport]) -> dict[str, tuple[int, float]]:
        """Count ``reports``; their flooding rooms, each with its reports here and its rate (reports/s)."""
        if not reports:
            return {}
        growth = self._growth(self._clock.now_ms())
        counts = self._counts
        self._total += len(reports) * growth
        bar = self.share_bound * self._total
        per_second = 1.0 / (growth * self._tau_s)
        flooding: dict[str, tuple[int, float]] = {}
        for room, n in Counter(map(_ROOM, reports)).items():
            value = counts.get(room, 0.0) + n * growth
            counts[room] = value
            if value >= bar:
                flooding[room] = (n, value * per_second)
        if len(counts) > 2 * self.max_rooms:
            self._prune()
        return flooding

    def _prune(self) -> None:
        largest = sorted(self._counts.items(), key=operator.itemgetter(1), reverse=True)[: self.max_rooms]
        self._counts = dict(largest)

    def share(self, room: str) -> float:
        """The room's share of the decayed total (0 for a room not in the table)."""
        return self._counts.get(room, 0.0) / self._total if self._total > 0 else 0.0

    def rate_per_second(self, room: str) -> float:
        """The room's recent reports per second (its decayed count over the decay's time constant)."""
        growth = self._growth(self._clock.now_ms())
        return self._counts.get(room, 0.0) / (growth * self._tau_s)
