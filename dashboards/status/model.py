"""What the public status page shows, built from alert events: components, their status, incidents.

Pure: rows in, a ``Snapshot`` out; the ClickHouse reads are in
``dashboards.status.source``. An incident is one alert episode (a fingerprint
and its ``starts_at``), its id ``<fingerprint>-<starts_at epoch seconds>``.

How an open incident sets its component's status (the worst one wins):

================================  ==================  ====================
alert                              severity warning     severity critical
================================  ==================  ====================
``service``, ``platform``, room    degraded_performance partial_outage
``cluster`` (a region)             partial_outage       major_outage
``global``: every component        partial_outage       major_outage
================================  ==================  ====================

``info`` is ``degraded_performance`` everywhere. ``suspected_forgery`` and
``app_version`` alerts and the alerts of unlisted rooms are not public.

>>> open_rows = [AlertRow("4676650f04e6de4c", 1000, "firing", "cluster", "eu-west", "correlated", "critical", 990, 0)]
>>> incidents = build_incidents(open_rows, notes=[], rooms={})
>>> incidents[0].id, incidents[0].impact, incidents[0].status, incidents[0].name
('4676650f04e6de4c-990', 'critical', 'investigating', 'Widespread problems: region eu-west')
>>> component_statuses(incidents, [ComponentRef("region", "eu-west"), ComponentRef("region", "us-east")])
{'region:eu-west': 'major_outage', 'region:us-east': 'operational'}
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

STATUSES: tuple[str, ...] = ("operational", "degraded_performance", "partial_outage", "major_outage")
IMPACTS: tuple[str, ...] = ("none", "minor", "major", "critical")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
KIND_ORDER: tuple[str, ...] = ("service", "region", "platform", "room")
KIND_TITLES: dict[str, str] = {"service": "Service", "region": "Region", "platform": "Platform", "room": "Room"}

# Public wording per alert kind: an alert's own summary names rooms and clients and stays internal.
PROBLEM_TITLES: dict[str, str] = {
    "details_not_available": "\u201cDetails not available\u201d errors",
    "crash": "App crashes",
    "join_failed": "Problems joining rooms",
    "audio_dropout": "Audio dropping out",
    "audio_garbled": "Garbled audio",
    "logged_out": "Users logged out",
    "timeout": "Timeouts",
    "other": "Errors",
    "error_ratio": "Elevated error rate",
    "volume": "Elevated error reports",
    "server_anomaly": "Degraded service",
    "correlated": "Widespread problems",
}
PRIVATE_KINDS = frozenset({"suspected_forgery"})
PUBLIC_SCOPES = frozenset({"service", "cluster", "platform", "global", "room"})
_SCOPE_COMPONENT = {"service": "service", "cluster": "region", "region": "region", "platform": "platform", "room": "room"}
_IMPACT_OF_STATUS = dict(zip(STATUSES, IMPACTS, strict=True))


@dataclass(frozen=True)
class AlertRow:
    """One row of ``alerts``: an alert's state change (times in epoch seconds, ``ends_at`` 0 while firing)."""

    fingerprint: str
    event_ts: int
    status: str
    scope: str
    key: str
    kind: str
    severity: str
    starts_at: int
    ends_at: int


@dataclass(frozen=True)
class Note:
    incident_id: str
    note_id: str
    created_at: int
    body: str


@dataclass(frozen=True)
class ComponentRef:
    kind: str
    key: str

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.key}"

    @property
    def id(self) -> str:
        """A stable opaque id: keys come from client reports and are no URL or HTML material."""
        return hashlib.sha256(self.ref.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass(frozen=True)
class Update:
    """One line of an incident's timeline."""

    at: int
    status: str  # Statuspage's incident status after this update
    body: str
    kind: str  # detected, updated, note, resolved


@dataclass(frozen=True)
class Incident:
    id: str
    fingerprint: str
    name: str
    scope: str
    key: str
    kind: str
    status: str  # investigating | identified | resolved
    impact: str  # minor | major | critical
    component_status: str
    started_at: int
    detected_at: int
    updated_at: int
    resolved_at: int | None
    last_event_at: int  # the newest alert event (a re-notification included), for expiry
    updates: tuple[Update, ...]
    components: tuple[ComponentRef, ...]  # empty: every component (global)

    @property
    def open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class SeriesPoint:
    at: int
    observed: float
    baseline: float


@dataclass(frozen=True)
class Component:
    ref: ComponentRef
    name: str
    status: str
    series: tuple[SeriesPoint, ...] = ()
    top_errors: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Everything one page render needs, as of ``as_of`` (epoch seconds)."""

    as_of: int
    components: tuple[Component, ...]
    incidents: tuple[Incident, ...]  # newest first, open and resolved
    window_start: int = 0
    newest_data: int | None = None  # end of the newest chart bucket: None when there is no data at all

    @property
    def open_incidents(self) -> tuple[Incident, ...]:
        return tuple(i for i in self.incidents if i.open)

    @property
    def indicator(self) -> str:
        return max((i.impact for i in self.open_incidents), key=IMPACTS.index, default="none")


INDICATOR_DESCRIPTIONS: dict[str, str] = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}


def parse_rooms(entries: Iterable[str]) -> dict[str, str]:
    """``room_id`` or ``room_id=Public name`` entries -> room id -> shown name.

    >>> parse_rooms(["room-17=Launch night", "room-2"])
    {'room-17': 'Launch night', 'room-2': 'Room room-2'}
    """
    rooms: dict[str, str] = {}
    for entry in entries:
        room, _, name = entry.partition("=")
        if room.strip():
            rooms[room.strip()] = name.strip() or f"Room {room.strip()}"
    return rooms


def incident_id(fingerprint: str, starts_at: int) -> str:
    return f"{fingerprint}-{starts_at}"


def component_of(scope: str, key: str) -> ComponentRef | None:
    kind = _SCOPE_COMPONENT.get(scope)
    return ComponentRef(kind, key) if kind else None


def status_of(scope: str, severity: str) -> str:
    """The component status one open alert implies (the module docstring's table).

    >>> status_of("room", "warning"), status_of("service", "critical"), status_of("global", "critical")
    ('degraded_performance', 'partial_outage', 'major_outage')
    """
    if severity == "info":
        return "degraded_performance"
    wide = scope in {"cluster", "global"}
    if severity == "critical":
        return "major_outage" if wide else "partial_outage"
    return "partial_outage" if wide else "degraded_performance"


def public(row: AlertRow, rooms: Mapping[str, str]) -> bool:
    if row.kind in PRIVATE_KINDS or row.scope not in PUBLIC_SCOPES:
        return False
    return row.scope != "room" or row.key in rooms


def component_name(ref: ComponentRef, rooms: Mapping[str, str]) -> str:
    if ref.kind == "room":
        return rooms.get(ref.key, f"Room {ref.key}")
    return f"{KIND_TITLES[ref.kind]} {ref.key}"


def _incident_name(row: AlertRow, rooms: Mapping[str, str]) -> str:
    problem = PROBLEM_TITLES.get(row.kind, "Errors")
    if row.scope == "global":
        return f"{problem}: all regions"
    ref = component_of(row.scope, row.key)
    where = component_name(ref, rooms) if ref else row.key
    return f"{problem}: {where[0].lower()}{where[1:]}" if ref and ref.kind != "room" else f"{problem}: {where}"


def build_incidents(rows: Iterable[AlertRow], notes: Iterable[Note], rooms: Mapping[str, str],
                    now: int | None = None, expire_after: int = 0) -> list[Incident]:
    """Group public alert events into incidents with their timelines, newest first.

    An open alert fires again every ``alerting.renotify_seconds`` while it
    stays bad; one with no event for ``expire_after`` seconds before ``now``
    (a stopped worker, a killed replay) is closed as expired, as
    Alertmanager expires it (0: never).
    """
    episodes: dict[str, list[AlertRow]] = {}
    for row in rows:
        if public(row, rooms):
            episodes.setdefault(incident_id(row.fingerprint, row.starts_at), []).append(row)
    notes_by_incident: dict[str, list[Note]] = {}
    for note in notes:
        notes_by_incident.setdefault(note.incident_id, []).append(note)
    incidents = [_incident(ident, events, notes_by_incident.get(ident, []), rooms)
                 for ident, events in episodes.items()]
    incidents = _supersede(incidents)
    if now is not None and expire_after > 0:
        incidents = [_expire(i, now, expire_after) for i in incidents]
    incidents.sort(key=lambda i: (i.open, i.updated_at, i.id), reverse=True)
    return incidents


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def _incident(ident: str, events: list[AlertRow], notes: list[Note], rooms: Mapping[str, str]) -> Incident:
    # A resolve wins a tie with a fire at the same event time (dashboards.sql.latest_alert_status).
    events.sort(key=lambda r: (r.event_ts, r.status == "resolved"))
    first, last = events[0], events[-1]
    resolved = last.status == "resolved"
    worst = max((status_of(r.scope, r.severity) for r in events), key=STATUSES.index)
    timeline: list[Update] = []
    has_note = bool(notes)
    open_status = "identified" if has_note else "investigating"
    previous_severity = ""
    for row in events:
        if row.status == "resolved":
            timeline.append(Update(row.event_ts, "resolved", "This incident has been resolved.", "resolved"))
        elif not previous_severity:
            timeline.append(Update(row.event_ts, "investigating",
                                   f"We are investigating {PROBLEM_TITLES.get(row.kind, 'errors').lower()}.", "detected"))
        elif _rank(row.severity) > _rank(previous_severity):  # an escalation
            timeline.append(Update(row.event_ts, open_status,
                                   f"Severity is now {row.severity}: "
                                   f"{status_of(row.scope, row.severity).replace('_', ' ')}.", "updated"))
        if row.status != "resolved":
            previous_severity = max(previous_severity or row.severity, row.severity, key=_rank)
    timeline.extend(Update(n.created_at, open_status if not resolved else "resolved", n.body, "note") for n in notes)
    timeline.sort(key=lambda u: (u.at, u.kind == "resolved"))
    ref = component_of(first.scope, first.key)
    return Incident(
        id=ident, fingerprint=first.fingerprint, name=_incident_name(first, rooms), scope=first.scope, key=first.key, kind=first.kind,
        status="resolved" if resolved else open_status, impact=_IMPACT_OF_STATUS[worst], component_status=worst,
        started_at=first.starts_at, detected_at=first.event_ts,
        updated_at=max([last.event_ts, *(n.created_at for n in notes)]),
        resolved_at=last.event_ts if resolved else None, last_event_at=last.event_ts, updates=tuple(timeline),
        components=(ref,) if ref else (),
    )


def _supersede(incidents: list[Incident]) -> list[Incident]:
    """One alert (fingerprint) has one episode open at a time: a newer one ends any older left open
    (its resolve was lost with a stopped worker)."""
    by_fingerprint: dict[str, list[Incident]] = {}
    for incident in incidents:
        by_fingerprint.setdefault(incident.fingerprint, []).append(incident)
    out: list[Incident] = []
    for episodes in by_fingerprint.values():
        episodes.sort(key=lambda i: i.started_at)
        for older, newer in zip(episodes, episodes[1:], strict=False):
            if older.open:
                closed = max(newer.started_at, older.last_event_at)
                older = dataclasses.replace(
                    older, status="resolved", resolved_at=closed, updated_at=max(older.updated_at, closed),
                    updates=(*older.updates, Update(closed, "resolved", "Closed: a newer incident of the same "
                                                                        "problem replaced it.", "superseded")))
            out.append(older)
        out.append(episodes[-1])
    out.sort(key=lambda i: (i.open, i.updated_at, i.id), reverse=True)
    return out


def _expire(incident: Incident, now: int, expire_after: int) -> Incident:
    if not incident.open or now - incident.last_event_at <= expire_after:
        return incident
    closed = incident.last_event_at + expire_after
    expired = Update(closed, "resolved", "Monitoring has not confirmed this incident since it was last updated; "
                                         "it is closed.", "expired")
    return dataclasses.replace(incident, status="resolved", resolved_at=closed, updated_at=max(incident.updated_at, closed),
                               updates=(*incident.updates, expired))


def component_statuses(incidents: Sequence[Incident], refs: Iterable[ComponentRef]) -> dict[str, str]:
    """Each component's status: the worst its open incidents imply; a global one touches all."""
    statuses = {ref.ref: "operational" for ref in refs}
    for incident in incidents:
        if not incident.open:
            continue
        targets = [c.ref for c in incident.components] if incident.components else list(statuses)
        for target in targets:
            if target in statuses and STATUSES.index(incident.component_status) > STATUSES.index(statuses[target]):
                statuses[target] = incident.component_status
    return statuses


def ordered(refs: Iterable[ComponentRef], per_kind: int) -> list[ComponentRef]:
    """Components by kind (services, regions, platforms, rooms), then key; at most ``per_kind`` of each.

    >>> [r.ref for r in ordered([ComponentRef("room", "b"), ComponentRef("service", "auth"),
    ...                          ComponentRef("room", "a")], per_kind=1)]
    ['service:auth', 'room:a']
    """
    out: list[ComponentRef] = []
    for kind in KIND_ORDER:
        out.extend(sorted({r for r in refs if r.kind == kind}, key=lambda r: r.key)[:per_kind])
    return out
