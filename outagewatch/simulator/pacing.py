"""Replay pacing (time compression) and progress lines for long runs.

``speed`` 60 replays an hour of event time in a minute; 0 sends as fast as
possible. Event times in the data are never changed, only when they are sent.

>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> pacer = Pacer(speed=60, clock=clock)
>>> pacer.delay_s(1_000_000), pacer.delay_s(1_060_000)  # one event minute later: one wall second
(0.0, 1.0)
>>> clock.advance(400); pacer.delay_s(1_060_000)
0.6
>>> Pacer(speed=0, clock=clock).delay_s(5_000_000_000)
0.0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from core.timeutil import Clock, SystemClock, format_ms

log = logging.getLogger("outagewatch.simulate")


class Pacing(Protocol):
    """Anything that says how long to wait before sending an event time (``Pacer``, the demo's story pacer)."""

    def delay_s(self, event_ms: int) -> float: ...


class Pacer:
    def __init__(self, speed: float, clock: Clock | None = None):
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.speed = speed
        self.clock = clock or SystemClock()
        self._anchor: tuple[int, int] | None = None

    def delay_s(self, event_ms: int) -> float:
        """Seconds to wait before sending what happened at ``event_ms``."""
        if self.speed == 0:
            return 0.0
        now = self.clock.now_ms()
        if self._anchor is None:
            self._anchor = (event_ms, now)
        first_event, first_wall = self._anchor
        due = first_wall + (event_ms - first_event) / self.speed
        return max(0.0, (due - now) / 1000.0)


@dataclass
class Delivery:
    """What a target did: counts an operator (and a test) can check."""

    target: str
    reports: int = 0
    metrics: int = 0
    requests: int = 0
    retries: int = 0
    rejected: int = 0
    wall_s: float = 0.0

    @property
    def reports_per_s(self) -> float:
        return self.reports / self.wall_s if self.wall_s > 0 else 0.0


class Progress:
    """Logs a line every ``every_s`` wall seconds: reports sent, rate, event time."""

    def __init__(self, target: str, every_s: float = 5.0, clock: Clock | None = None):
        self.target = target
        self.every_ms = every_s * 1000
        self.clock = clock or SystemClock()
        self.started = self.clock.now_ms()
        self.last = self.started
        self.reports = 0

    def update(self, reports: int, event_ms: int) -> None:
        self.reports = reports
        now = self.clock.now_ms()
        if now - self.last >= self.every_ms:
            self.last = now
            rate = reports / max((now - self.started) / 1000, 1e-9)
            log.info("%s: %d reports sent, %.0f reports/s, event time %s", self.target, reports, rate, format_ms(event_ms))

    def elapsed_s(self) -> float:
        return (self.clock.now_ms() - self.started) / 1000
