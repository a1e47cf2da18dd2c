"""Silences: equality and regex matchers, expiry by the injected clock, state."""

from __future__ import annotations

import pytest

from alerting.silence import Matcher, Silences
from core.schemas import Alert
from core.timeutil import ManualClock
from tests.alerting.helpers import T0


def alert(key: str = "room-17", region: str = "eu-west", kind: str = "crash") -> Alert:
    return Alert(
        fingerprint="f",
        status="firing",
        scope="room",
        key=key,
        kind=kind,
        severity="warning",
        starts_at=T0,
        event_ts=T0,
        summary="",
        labels={"region": region},
    )


def test_equality_and_regex_matchers_all_must_match() -> None:
    silences = Silences(ManualClock(T0))
    silences.add(["region=eu-west", 'key=~"room-1[0-9]"'], ends_at_ms=T0 + 60_000, comment="load test")
    assert silences.mutes(alert("room-17")) is not None
    assert silences.mutes(alert("room-170")) is None  # regexes match the whole value
    assert silences.mutes(alert("room-17", region="us-east")) is None


def test_negative_matchers() -> None:
    silences = Silences(ManualClock(T0))
    silences.add(["kind!=crash", "region!~us-.*"], ends_at_ms=T0 + 60_000)
    assert silences.mutes(alert(kind="timeout")) is not None
    assert silences.mutes(alert(kind="crash")) is None
    assert silences.mutes(alert(kind="timeout", region="us-east")) is None


def test_expiry_future_start_and_manual_expire() -> None:
    clock = ManualClock(T0)
    silences = Silences(clock)
    later = silences.add(["region=eu-west"], starts_at_ms=T0 + 10_000, ends_at_ms=T0 + 20_000)
    assert silences.mutes(alert()) is None  # not started yet
    clock.advance(10_000)
    assert silences.mutes(alert()) == f"silenced by {later}"
    clock.advance(10_000)
    assert silences.mutes(alert()) is None  # expired
    sid = silences.add(["region=eu-west"], ends_at_ms=T0 + 3_600_000)
    assert silences.mutes(alert()) is not None
    silences.expire(sid)
    assert silences.mutes(alert()) is None
    silences.gc()
    assert silences.to_state() == []


def test_state_round_trip() -> None:
    clock = ManualClock(T0)
    silences = Silences(clock)
    sid = silences.add(["region=~eu-.*"], ends_at_ms=T0 + 60_000, comment="c", created_by="oncall")
    again = Silences(clock)
    again.load_state(silences.to_state())
    assert again.mutes(alert()) == f"silenced by {sid} (c)"


@pytest.mark.parametrize("bad", ["region", "=x", "region=~(", "1abc=x"])
def test_bad_matchers_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="silence matcher"):
        Matcher.parse(bad)


def test_a_silence_needs_matchers_and_a_future_end() -> None:
    silences = Silences(ManualClock(T0))
    with pytest.raises(ValueError, match="at least one matcher"):
        silences.add([], ends_at_ms=T0 + 1)
    with pytest.raises(ValueError, match="ends"):
        silences.add(["a=b"], ends_at_ms=T0)
