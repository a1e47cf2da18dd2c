"""When generated reports reach the collector: delays, disorder, broken clocks.

The engine says when something happened (``ts``); a platform receives it
later, and not in that order. ``Arrivals`` takes each tick's reports and
releases them in arrival order:

- a client sends what it has every ``batch_s`` seconds (apps batch reports to
  save battery), at a phase of its own, so a report waits up to ``batch_s``;
- then a network delay, log-normal around ``jitter_ms``;
- ``late_share`` of the reports are held much longer (a phone in a tunnel, an
  app in the background), uniformly within ``late_s``: beyond the windows'
  allowed lateness, they arrive after their window has closed. Only reports
  of one person are: a seat's heartbeat standing for thousands (``World.weight``)
  held past its window would take them all out of it at once;
- a report held by its client until a silence ends (``ReportColumns.hold_ms``)
  leaves no earlier than that;
- ``broken_clocks`` replace the ``ts`` of one report arriving in the given
  second of the run by the given epoch milliseconds (a client whose clock says
  2099 or 2001), the way such reports really come in: at their arrival time.

Within one millisecond of arrival, reports keep the order they were generated in.

>>> from outagewatch.simulator.engine import generate
>>> model = ArrivalModel(batch_s=5.0, jitter_ms=200.0, late_share=0.01)
>>> arrivals = Arrivals(model, seed=1)
>>> out = []
>>> for tick in generate("room_failure", seed=1, scale=0.01, duration_s=60, rooms=20):
...     arrivals.push(tick)
...     out.extend(arrivals.due(tick.end_ms))
>>> out.extend(arrivals.rest())
>>> from core.schemas import decode_report
>>> ts = [decode_report(line).ts for line in out]
>>> ts == sorted(ts), len(out) == len(set(out))  # disordered, none lost
(False, True)
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass

import numpy as np

from .engine import Tick
from .population import unit_hash
from .wire import json_lines

_BATCH_SALT = 7919


@dataclass(frozen=True)
class ArrivalModel:
    """How reports travel (see the module docstring); the defaults deliver at once, in order."""

    batch_s: float = 0.0
    jitter_ms: float = 0.0
    late_share: float = 0.0
    late_s: tuple[float, float] = (15.0, 120.0)
    broken_clocks: tuple[tuple[int, int], ...] = ()  # (second of the run, the ts its report carries)

    def __post_init__(self) -> None:
        if self.batch_s < 0 or self.jitter_ms < 0 or not 0.0 <= self.late_share <= 1.0:
            raise ValueError("arrival: batch_s and jitter_ms must be >= 0, late_share in [0, 1]")
        if not 0 <= self.late_s[0] <= self.late_s[1]:
            raise ValueError(f"arrival: late_s must be (low, high) with 0 <= low <= high, got {self.late_s}")


class Arrivals:
    """Reports in, in generation order; out, in arrival order."""

    def __init__(self, model: ArrivalModel, seed: int) -> None:
        self.model = model
        self.rng = np.random.default_rng([seed, 13])
        self.heap: list[tuple[int, int, bytes]] = []
        self.clocks = dict(model.broken_clocks)
        self.first_ms: int | None = None
        self.pushed = 0

    def push(self, tick: Tick) -> None:
        columns = tick.columns
        n = len(columns)
        if self.first_ms is None:
            self.first_ms = tick.start_ms
        if not n:
            return
        model, rng = self.model, self.rng
        ts = columns.ts
        leave = np.maximum(ts, columns.holds())
        delay = np.zeros(n)
        if model.batch_s > 0:
            period_ms = model.batch_s * 1000.0
            phase = unit_hash(columns.client, _BATCH_SALT) * period_ms
            delay += (phase - leave) % period_ms
        if model.jitter_ms > 0:
            delay += rng.lognormal(np.log(model.jitter_ms), 0.8, size=n)
        if model.late_share > 0:
            # A report standing for many people (a seat's heartbeat) is never held as one: held, it took
            # thousands of listeners out of one window of its slice while their errors, one person each,
            # still came, a rise in error ratio that no real phone in a tunnel makes.
            late = (rng.random(n) < model.late_share) & (columns.weights() <= 1.0)
            delay += late * rng.uniform(model.late_s[0] * 1000.0, model.late_s[1] * 1000.0, size=n)
        arrive = (leave + delay).astype(np.int64)
        second = (tick.start_ms - self.first_ms) // 1000
        if second in self.clocks:
            wrong = ts.copy()
            wrong[int(rng.integers(0, n))] = self.clocks[second]
            columns = dataclasses.replace(columns, ts=wrong)
        lines = json_lines(columns, tick.naming)
        push, heap, base = heapq.heappush, self.heap, self.pushed
        for offset, (when, line) in enumerate(zip(arrive.tolist(), lines, strict=True)):
            push(heap, (when, base + offset, line))
        self.pushed += n

    def due(self, now_ms: int) -> list[bytes]:
        """Every report that has arrived before ``now_ms``, in arrival order."""
        heap, pop, out = self.heap, heapq.heappop, []
        while heap and heap[0][0] < now_ms:
            out.append(pop(heap)[2])
        return out

    def rest(self) -> list[bytes]:
        """What is still on its way when the run ends (it all arrives, late)."""
        out = [line for _, _, line in sorted(self.heap)]
        self.heap = []
        return out
