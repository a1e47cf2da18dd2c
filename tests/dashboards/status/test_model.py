"""Status rules that must hold exactly: the severity/scope mapping, what stays private, timelines."""

from __future__ import annotations

from dashboards.status.model import (
    AlertRow,
    ComponentRef,
    Note,
    build_incidents,
    component_statuses,
    parse_rooms,
    status_of,
)

ROOMS = parse_rooms(["room-17=Launch night"])


def row(status: str, event_ts: int, scope: str = "service", key: str = "auth", kind: str = "server_anomaly",
        severity: str = "warning", fingerprint: str = "f" * 16, starts_at: int = 1000) -> AlertRow:
    return AlertRow(fingerprint, event_ts, status, scope, key, kind, severity, starts_at,
                    event_ts if status == "resolved" else 0)


def test_mapping_table() -> None:
    assert [status_of(scope, sev) for scope in ("room", "platform", "service", "cluster", "global")
            for sev in ("info", "warning", "critical")] == [
        "degraded_performance", "degraded_performance", "partial_outage",
        "degraded_performance", "degraded_performance", "partial_outage",
        "degraded_performance", "degraded_performance", "partial_outage",
        "degraded_performance", "partial_outage", "major_outage",
        "degraded_performance", "partial_outage", "major_outage"]


def test_private_alerts_never_become_incidents() -> None:
    rows = [row("firing", 1010, scope="room", key="room-99", kind="crash"),  # not a listed room
            row("firing", 1010, scope="room", key="room-17", kind="suspected_forgery", fingerprint="a" * 16),
            row("firing", 1010, scope="app_version", key="5.1", kind="crash", fingerprint="b" * 16)]
    assert build_incidents(rows, [], ROOMS) == []


def test_timeline_escalation_note_and_resolve() -> None:
    rows = [row("firing", 1010), row("firing", 1020), row("firing", 1030, severity="critical"),
            row("resolved", 1100), row("firing", 1100)]  # a resolve wins a tie with a fire
    notes = [Note("f" * 16 + "-1000", "n1", 1050, "Rolling back.")]
    (incident,) = build_incidents(rows, notes, ROOMS)
    assert [(u.kind, u.at, u.status) for u in incident.updates] == [
        ("detected", 1010, "investigating"), ("updated", 1030, "identified"), ("note", 1050, "resolved"),
        ("resolved", 1100, "resolved")]
    assert incident.status == "resolved" and incident.resolved_at == 1100
    assert incident.impact == "major" and incident.component_status == "partial_outage"
    assert incident.name == "Degraded service: service auth"


def test_worst_open_incident_wins_and_global_touches_every_component() -> None:
    refs = [ComponentRef("service", "auth"), ComponentRef("region", "eu-west"), ComponentRef("room", "room-17")]
    incidents = build_incidents([
        row("firing", 1010),
        row("firing", 1010, scope="service", key="auth", kind="server_anomaly", severity="critical",
            fingerprint="c" * 16),
        row("firing", 1010, scope="global", key="all", kind="correlated", fingerprint="d" * 16),
        row("firing", 900, scope="cluster", key="eu-west", kind="correlated", severity="critical",
            fingerprint="e" * 16, starts_at=800),
        row("resolved", 950, scope="cluster", key="eu-west", kind="correlated", severity="critical",
            fingerprint="e" * 16, starts_at=800),
    ], [], ROOMS)
    assert component_statuses(incidents, refs) == {
        "service:auth": "partial_outage", "region:eu-west": "partial_outage", "room:room-17": "partial_outage"}


def test_an_alert_nobody_confirms_any_more_expires() -> None:
    """A worker that died leaves its alerts firing; the page closes them as Alertmanager would."""
    rows = [row("firing", 1010), row("firing", 4610)]  # re-fired once an hour, then nothing
    (live,) = build_incidents(rows, [], ROOMS, now=4610 + 7200, expire_after=7200)
    assert live.open
    (gone,) = build_incidents(rows, [], ROOMS, now=4610 + 7201, expire_after=7200)
    assert not gone.open and gone.resolved_at == 4610 + 7200 and gone.updates[-1].kind == "expired"
    assert component_statuses([gone], [ComponentRef("service", "auth")]) == {"service:auth": "operational"}


def test_a_newer_episode_of_the_same_alert_closes_an_older_one_left_open() -> None:
    rows = [row("firing", 1010, starts_at=1000), row("firing", 5010, starts_at=5000)]  # the resolve was lost
    newer, older = build_incidents(rows, [], ROOMS)
    assert newer.open and newer.started_at == 5000
    assert not older.open and older.resolved_at == 5000 and older.updates[-1].kind == "superseded"
