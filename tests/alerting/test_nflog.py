"""Notification log rules: what counts as already sent."""

from __future__ import annotations

from pathlib import Path

import msgspec

from alerting.nflog import Nflog
from core.schemas import Alert
from core.timeutil import ManualClock
from tests.alerting.helpers import T0

FIRING = Alert(
    fingerprint="f",
    status="firing",
    scope="room",
    key="r",
    kind="crash",
    severity="warning",
    starts_at=T0,
    event_ts=T0 + 20_000,
    summary="r: crash",
)


def with_(alert: Alert, **changes: object) -> Alert:
    return Alert(**{**msgspec.structs.asdict(alert), **changes})


def test_rules() -> None:
    log = Nflog(ManualClock(T0), renotify_seconds=600)
    resolved = with_(FIRING, status="resolved", event_ts=T0 + 60_000, ends_at=T0 + 40_000)
    assert log.skip_reason("hook", resolved) == "firing was never notified to this receiver"
    log.record("hook", FIRING)
    assert log.skip_reason("hook", FIRING) is not None  # retry / replay
    assert log.skip_reason("other", FIRING) is None  # per receiver
    assert log.skip_reason("hook", with_(FIRING, severity="critical")) is None  # escalation pages
    assert log.skip_reason("hook", with_(FIRING, event_ts=T0 + 620_000)) is None  # renotify due
    assert log.skip_reason("hook", resolved) is None
    log.record("hook", resolved)
    assert log.skip_reason("hook", resolved) == "already notified resolved"
    assert log.skip_reason("hook", FIRING) == "episode already resolved"  # replayed firing of a closed episode
    assert log.skip_reason("hook", with_(FIRING, starts_at=T0 + 100_000, event_ts=T0 + 120_000)) is None  # new episode


def test_gc_and_file_round_trip(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    log = Nflog(clock, retention_seconds=60)
    log.record("hook", FIRING)
    log.record("hook", with_(FIRING, fingerprint="g", status="resolved"))
    log.save(tmp_path / "nflog.json")
    again = Nflog(clock)
    again.load(tmp_path / "nflog.json")
    assert again.to_state() == log.to_state()
    clock.advance(61_000)
    assert log.gc() == 1  # resolved and old; the open one stays
    assert log.last("hook", "f") is not None and log.last("hook", "g") is None
