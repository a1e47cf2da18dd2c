"""Hand-made alerts and labels with the numbers worked out by hand."""

from __future__ import annotations

import pytest

from core.schemas import Alert
from detectors.evaluation import score_alerts

T0 = 1_795_323_600_000  # 2026-11-22T05:00:00Z
S = 1000


def _alert(fingerprint: str, key: str, fired_s: float, status: str = "firing", scope: str = "room",
           affected: tuple[str, ...] = (), starts_s: float | None = None) -> Alert:
    starts = T0 + int((fired_s if starts_s is None else starts_s) * S)
    return Alert(fingerprint=fingerprint, status=status, scope=scope, key=key, kind="crash", severity="critical",
                 starts_at=starts, event_ts=T0 + int(fired_s * S), summary="x", affected=list(affected),
                 ends_at=T0 + int(fired_s * S) if status == "resolved" else None)


def _incident(ident: str, key: str, start_s: int, end_s: int, scope: str = "room") -> dict[str, str]:
    def stamp(seconds: int) -> str:
        return f"2026-11-22T05:{seconds // 60:02d}:{seconds % 60:02d}Z"
    return {"id": ident, "scope": scope, "key": key, "kind": "crash", "start": stamp(start_s), "end": stamp(end_s)}


def test_matching_grace_delays_and_false_alerts() -> None:
    labels = {"incidents": [
        _incident("a", "room-1", 0, 300),      # room alert at +20 s, renotified later: one alert
        _incident("b", "room-2", 600, 900),    # only covered by the cluster alert listing it, at +30 s
        _incident("c", "room-3", 1200, 1260),  # fires 50 s after the end: inside the 60 s grace
        _incident("d", "room-4", 1800, 1860),  # fires 70 s after the end: missed, and that alert is false
        _incident("e", "room-5", 2400, 2460),  # never alerted
    ]}
    alerts = [
        _alert("f-a", "room-1", 20), _alert("f-a", "room-1", 320, starts_s=20),
        _alert("f-a", "room-1", 400, status="resolved", starts_s=20),
        _alert("f-b", "eu-1", 630, scope="cluster", affected=("room-2", "room-9")),
        _alert("f-c", "room-3", 1310),
        _alert("f-d", "room-4", 1930), _alert("f-d", "room-4", 1990, status="resolved", starts_s=1930),
        _alert("f-x", "room-7", 100), _alert("f-x", "room-7", 130, status="resolved", starts_s=100),
        _alert("f-early", "room-5", 2300), _alert("f-early", "room-5", 2350, status="resolved", starts_s=2300),
    ]
    result = score_alerts(alerts, labels, room_days=4.0)
    assert result == {
        "incidents": 5,
        "detected": 3,
        "recall": 0.6,
        "precision": 0.5,  # 6 alerts; f-d, f-x, f-early overlap none of their incidents (f-early ended before e)
        "f1": 0.5455,
        "delay_s": {"p50": 30.0, "p95": 110.0, "max": 110.0},  # delays 20, 30, 110 (nearest rank)
        "false_alerts": 3,
        "false_alerts_per_room_day": 0.75,
        "alerts": 6,
    }
    assert list(result) == ["incidents", "detected", "recall", "precision", "f1", "delay_s", "false_alerts",
                            "false_alerts_per_room_day", "alerts"]


def test_a_firing_alert_before_the_start_that_lasts_into_it_is_not_false_but_does_not_detect() -> None:
    labels = {"incidents": [_incident("a", "room-1", 100, 200)]}
    result = score_alerts([_alert("f", "room-1", 90)], labels, room_days=1.0)
    assert (result["detected"], result["false_alerts"], result["alerts"]) == (0, 0, 1)


def test_global_alerts_cover_rooms_and_global_incidents_need_global_alerts() -> None:
    labels = {"incidents": [_incident("g", "all", 0, 300, scope="global"), _incident("r", "room-1", 0, 300)]}
    room_only = score_alerts([_alert("f1", "room-1", 10)], labels, room_days=1.0)
    assert room_only["detected"] == 1  # the room incident; the global one is not covered by a room alert
    both = score_alerts([_alert("f1", "room-1", 10), _alert("g1", "all", 40, scope="global")], labels, room_days=1.0)
    assert both["detected"] == 2 and both["delay_s"] == {"p50": 10.0, "p95": 40.0, "max": 40.0}


def test_a_room_an_incident_names_in_a_later_notification_is_found_then() -> None:
    labels = {"incidents": [_incident("a", "room-8", 0, 300), _incident("b", "room-11", 35, 300)]}
    first = _alert("c", "eu-west", 10, scope="cluster", affected=("room-8",), starts_s=0)
    later = _alert("c", "eu-west", 50, scope="cluster", affected=("room-8", "room-11"), starts_s=0)
    result = score_alerts([first, later], labels, room_days=1.0)
    assert (result["detected"], result["alerts"], result["false_alerts"]) == (2, 1, 0)
    assert result["delay_s"] == {"p50": 10.0, "p95": 15.0, "max": 15.0}  # room-11 from its naming at 50 s
    assert score_alerts([first], labels, room_days=1.0)["detected"] == 1


def test_silent_negative_scenario_scores_perfectly() -> None:
    assert score_alerts([], {"incidents": []}, room_days=10.0) == {
        "incidents": 0, "detected": 0, "recall": 1.0, "precision": 1.0, "f1": 1.0,
        "delay_s": {"p50": None, "p95": None, "max": None}, "false_alerts": 0,
        "false_alerts_per_room_day": 0.0, "alerts": 0,
    }


def test_bad_labels_and_room_days_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="expected"):
        score_alerts([], {"nope": []}, room_days=1.0)
    with pytest.raises(ValueError, match="incident 0 .*missing start"):
        score_alerts([], {"incidents": [{"id": "a", "scope": "room", "key": "r", "end": "x"}]}, room_days=1.0)
    with pytest.raises(ValueError, match="end is before start"):
        score_alerts([], {"incidents": [_incident("a", "r", 100, 50)]}, room_days=1.0)
    with pytest.raises(ValueError, match="room_days"):
        score_alerts([], {"incidents": []}, room_days=0)
