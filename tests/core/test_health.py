"""The liveness rule, exactly: a fake clock, no threads except the guard's own test."""

from __future__ import annotations

import threading

import pytest

from core.config import ConfigError, load_settings
from core.health import Health, LivenessGuard, LivenessPolicy, Verdict
from core.timeutil import ManualClock

POLICY = LivenessPolicy(stall_seconds=60, startup_seconds=120)


def _health(needs_assignment: bool = True) -> tuple[Health, ManualClock]:
    clock = ManualClock(1_795_323_600_000)
    return Health("worker", clock, POLICY, needs_assignment=needs_assignment), clock


def test_live_while_idle_however_long_nothing_moves() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.waiting(0)
    clock.advance(3_600_000)
    assert health.verdict() == Verdict(True, True)


def test_not_live_when_input_waits_and_nothing_moves_for_the_stall_time() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.moved("window closed", event_ms=1_795_323_590_000)
    clock.advance(600_000)  # idle ten minutes: the stall clock starts when input starts waiting
    health.waiting(2165, "records of client-reports")
    clock.advance(59_999)
    assert health.verdict().live
    clock.advance(1)
    verdict = health.verdict()
    assert not verdict.live and not verdict.ready
    assert verdict.reason.startswith("2165 records of client-reports waiting and nothing moved for 60s")
    assert "last window closed at 2026-11-22T05:00:00.000Z" in verdict.reason


def test_progress_restarts_the_stall_clock_and_caught_up_input_clears_it() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.waiting(500)
    clock.advance(50_000)
    health.moved("window closed")
    clock.advance(50_000)
    assert health.verdict().live, "moved 50 s ago, under the 60 s stall time"
    health.waiting(0)
    clock.advance(120_000)
    health.waiting(10)
    clock.advance(30_000)
    assert health.verdict().live, "input waiting again only for 30 s"


def test_unknown_input_never_makes_it_not_live() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.waiting(None)
    clock.advance(3_600_000)
    assert health.verdict().live


def test_no_assignment_after_the_start_up_time_is_not_live_and_before_it_not_ready() -> None:
    health, clock = _health()
    clock.advance(119_000)
    assert health.verdict() == Verdict(True, False, "waiting for its partition assignment")
    health.not_ready("table recovery: 3200 changelog records to read")
    clock.advance(1_000)
    verdict = health.verdict()
    assert not verdict.live
    assert verdict.reason == "no partition assignment 120s after start (table recovery: 3200 changelog records to read)"


def test_retrying_a_known_outage_before_the_first_assignment_is_live() -> None:
    health, clock = _health()
    for _ in range(20):  # ClickHouse down at start for ten minutes: the sink retries every 30 s
        clock.advance(30_000)
        health.blocked("ClickHouse not reachable at start: Connection refused")
    verdict = health.verdict()
    assert verdict.live and not verdict.ready and verdict.reason.startswith("ClickHouse not reachable")
    clock.advance(60_000)
    assert not health.verdict().live, "it stopped retrying and still has no assignment"


def test_an_empty_assignment_is_an_assignment() -> None:
    health, clock = _health()
    health.assigned({})  # more workers than partitions: this one is a spare
    clock.advance(600_000)
    assert health.verdict() == Verdict(True, True)


def test_a_process_without_partitions_needs_no_assignment() -> None:
    health, clock = _health(needs_assignment=False)
    clock.advance(600_000)
    assert health.verdict() == Verdict(True, True)


def test_retrying_a_known_outage_is_live_but_not_ready_and_progress_clears_it() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.waiting(10_000)
    for _ in range(10):  # ClickHouse down for 5 minutes, a retry every 30 s
        clock.advance(30_000)
        health.blocked("ClickHouse: Connection refused; consumption paused")
    verdict = health.verdict()
    assert verdict.live and not verdict.ready
    assert verdict.reason == "ClickHouse: Connection refused; consumption paused (since 2026-11-22T05:00:30.000Z)"
    clock.advance(61_000)
    assert not health.verdict().live, "no retry for over a minute while input waits"
    health.moved("batch written")
    assert health.verdict() == Verdict(True, True)


def test_a_loop_that_stops_beating_is_not_live_even_with_no_input_known() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.beat()
    clock.advance(59_000)
    assert health.verdict().live
    clock.advance(1_000)
    assert health.verdict() == Verdict(False, False, "its loop has not run for 60s (last at 2026-11-22T05:00:00.000Z)")


def test_snapshot_says_what_waits_and_when_it_last_moved() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8, "server-metrics": 0})
    health.moved("window closed", event_ms=1_795_323_590_000)
    health.waiting(12, "records of client-reports")
    snapshot = health.snapshot()
    assert snapshot["assigned_partitions"] == {"client-reports": 8}
    assert snapshot["last_progress"] == {"what": "window closed", "wall_time": "2026-11-22T05:00:00.000Z",
                                         "event_time": "2026-11-22T04:59:50.000Z"}
    assert snapshot["input_waiting"] == 12 and snapshot["live"] and snapshot["ready"]


def test_the_guard_reports_a_stall_once_from_its_own_thread() -> None:
    health, clock = _health()
    health.assigned({"client-reports": 8})
    health.waiting(1)
    clock.advance(60_000)
    called = threading.Event()
    seen: list[Verdict] = []

    def on_not_live(_: Health, verdict: Verdict) -> None:
        seen.append(verdict)
        called.set()

    guard = LivenessGuard(health, on_not_live, interval_s=0.01).start()
    assert called.wait(5)
    guard.stop()
    assert len(seen) == 1 and not seen[0].live


def test_settings_refuse_a_stall_time_that_cannot_work() -> None:
    with pytest.raises(ConfigError, match="OUTAGEWATCH_HEALTH_STALL_SECONDS"):
        load_settings(env={"OUTAGEWATCH_HEALTH_STALL_SECONDS": "0"})
    assert LivenessPolicy.from_settings(load_settings(env={})).stall_seconds == 120.0
