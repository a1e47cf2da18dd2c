"""A schedule of faults injected while a benchmark's load runs, and what each did.

Each ``Fault`` has an ``inject`` action at ``at_s`` seconds after the start,
an optional ``recover`` action ``recover_after_s`` later (restart what was
killed), and a ``healthy`` probe: the time from injection until the probe
holds again (after recovery, when there is one) is the fault's recovery
time. Each fault runs on its own timeline (a thread), so a slow recovery
does not push the next fault past the load. The schedule only runs actions
and reads a clock, so it is shared by any benchmark that breaks things on
purpose.

>>> clock = FakeClock()
>>> done = []
>>> schedule = FaultSchedule([
...     Fault("kill a", at_s=5, inject=lambda: done.append("kill"), recover=lambda: done.append("start"),
...           recover_after_s=10, healthy=lambda: clock.now >= 17),
... ], clock=clock.monotonic, sleep=clock.sleep)
>>> [(r.name, r.injected_at_s, r.recovered_at_s, r.healthy_after_s) for r in schedule.run()]
[('kill a', 5.0, 15.0, 12.0)]
>>> done
['kill', 'start']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("outagewatch.bench")


@dataclass(frozen=True)
class Fault:
    name: str
    at_s: float
    inject: Callable[[], object]
    recover: Callable[[], object] | None = None
    recover_after_s: float = 0.0
    healthy: Callable[[], bool] | None = None
    # How long to wait for ``healthy`` before calling the fault unrecovered.
    healthy_timeout_s: float = 120.0


@dataclass(frozen=True)
class FaultRecord:
    """When a fault was injected and recovered (seconds from the schedule's start) and how long health took."""

    name: str
    injected_at_s: float
    recovered_at_s: float | None
    healthy_after_s: float | None
    error: str = ""


class FakeClock:
    """A clock for the doctest: ``sleep`` moves it on."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class FaultSchedule:
    """Runs ``faults`` in the order of ``at_s``; ``run`` returns once the last one is healthy (or timed out)."""

    def __init__(self, faults: Sequence[Fault], clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll_s: float = 1.0) -> None:
        self.faults = sorted(faults, key=lambda fault: fault.at_s)
        self.clock = clock
        self.sleep = sleep
        self.poll_s = poll_s

    def run(self) -> list[FaultRecord]:
        """Run every fault at its time, each on its own thread; return their records in schedule order."""
        import threading

        start = self.clock()
        records: list[FaultRecord | None] = [None] * len(self.faults)

        def one(index: int, fault: Fault) -> None:
            self.sleep(max(0.0, start + fault.at_s - self.clock()))
            records[index] = self._one(fault, start)

        if len(self.faults) == 1:  # no thread needed (and the doctest's fake clock stays simple)
            one(0, self.faults[0])
        else:
            threads = [threading.Thread(target=one, args=(i, f), name=f"fault-{i}", daemon=True)
                       for i, f in enumerate(self.faults)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return [record for record in records if record is not None]

    def _one(self, fault: Fault, start: float) -> FaultRecord:
        injected = self.clock()
        log.warning("fault: %s at %.0f s", fault.name, injected - start)
        try:
            fault.inject()
            recovered = None
            if fault.recover is not None:
                self.sleep(max(0.0, injected + fault.recover_after_s - self.clock()))
                fault.recover()
                recovered = self.clock()
            healthy_after = self._wait_healthy(fault, injected)
        except Exception as exc:  # noqa: BLE001 - a fault that cannot be injected is a result, not a crash
            log.warning("fault %s failed: %s", fault.name, exc)
            return FaultRecord(fault.name, round(injected - start, 1), None, None, f"{type(exc).__name__}: {exc}")
        return FaultRecord(fault.name, round(injected - start, 1),
                           None if recovered is None else round(recovered - start, 1), healthy_after)

    def _wait_healthy(self, fault: Fault, injected: float) -> float | None:
        if fault.healthy is None:
            return None
        deadline = self.clock() + fault.healthy_timeout_s
        while self.clock() < deadline:
            try:
                if fault.healthy():
                    return round(self.clock() - injected, 1)
            except Exception as exc:  # noqa: BLE001 - "not yet"
                log.debug("%s not healthy yet: %s", fault.name, exc)
            self.sleep(self.poll_s)
        return None
