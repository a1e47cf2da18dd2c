"""The fault schedule: each fault at its own time, whatever the others' recoveries take."""

from __future__ import annotations

import time

from outagewatch.bench.faults import Fault, FaultSchedule


def test_a_slow_recovery_does_not_delay_the_next_fault() -> None:
    injected: dict[str, float] = {}
    begin = time.monotonic()
    schedule = FaultSchedule([
        Fault("slow", at_s=0.0, inject=lambda: injected.setdefault("slow", time.monotonic() - begin),
              healthy=lambda: time.monotonic() - begin > 0.6),
        Fault("next", at_s=0.2, inject=lambda: injected.setdefault("next", time.monotonic() - begin)),
    ], poll_s=0.05)
    records = schedule.run()
    assert [r.name for r in records] == ["slow", "next"]
    assert injected["next"] < 0.5, injected  # not after the first fault's 0.6 s of recovery
    assert records[0].healthy_after_s is not None and records[0].healthy_after_s >= 0.6
    assert records[1].healthy_after_s is None  # no probe


def test_a_fault_that_cannot_be_injected_is_recorded_not_raised() -> None:
    def broken() -> None:
        raise RuntimeError("no such process")

    (record,) = FaultSchedule([Fault("broken", at_s=0.0, inject=broken)]).run()
    assert record.error == "RuntimeError: no such process" and record.healthy_after_s is None
