"""Score alerts against labelled incidents: the numbers ``outagewatch evaluate`` prints.

Pure: it takes the alert events a replay produced and the labels document,
and returns the JSON object docs/design.md specifies. The rules, from docs/design.md:

- an alert *covers* an incident when it is for the incident's key, or it is
  a global alert, or it lists the incident's key in ``affected`` (a cluster
  or region incident grouping rooms); a global incident is covered only by a
  global alert;
- an incident is detected when a covering alert **fires** between its start
  and its end plus ``grace_s`` (60 s); the delay is the first such firing
  minus the start;
- an alert is one firing episode: the events sharing a fingerprint and
  ``starts_at`` (re-notifications are not new alerts). It fires at its first
  firing event and lasts until its resolved event (or the end of the replay);
  it covers every room any of its firing events named, each from the first
  event that named it (an incident notifies again when it takes in rooms).
  It is a false alert when that span overlaps no incident it covers, each
  incident stretched by the same grace after its end.

``recall`` is detected / incidents, ``precision`` is (alerts - false alerts) /
alerts; each is 1.0 when its denominator is 0 (no incidents to miss, no alert
to be wrong), so a negative scenario that stays silent scores 1.0 and 0 false
alerts. Delay percentiles are nearest-rank (the p95 of 20 delays is the 19th),
``null`` when nothing was detected. Ratios are rounded to 4 decimals, delays
to the millisecond.

>>> from core.schemas import Alert
>>> labels = {"incidents": [{"id": "i1", "scope": "room", "key": "room-17", "kind": "crash",
...                          "start": "2026-11-22T05:00:00Z", "end": "2026-11-22T05:05:00Z"}]}
>>> fired = Alert(fingerprint="f1", status="firing", scope="room", key="room-17", kind="crash",
...               severity="critical", starts_at=1795323620000, event_ts=1795323620000, summary="crash spike")
>>> score_alerts([fired], labels, room_days=1.0)["delay_s"]
{'p50': 20.0, 'p95': 20.0, 'max': 20.0}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.schemas import Alert
from core.timeutil import parse_event_time

GRACE_S = 60.0


@dataclass(frozen=True)
class Incident:
    id: str
    scope: str
    key: str
    kind: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class AlertEpisode:
    fingerprint: str
    scope: str
    key: str
    affected: frozenset[str]
    fired_ms: int
    ended_ms: float  # math.inf while still firing at the end of the replay
    starts_at: int = 0  # with the fingerprint, what names the episode
    # room -> when a firing event of the episode first named it: an incident notifies again when it takes
    # in rooms (their own pages are held by it), so a room failing later is found then, not at its first page.
    named_ms: Mapping[str, int] = field(default_factory=dict, hash=False, compare=False)

    def covers(self, incident: Incident) -> bool:
        if incident.scope == "global":
            return self.scope == "global"
        return self.scope == "global" or self.key == incident.key or incident.key in self.affected

    def found_ms(self, incident: Incident) -> int:
        """When this episode (covering ``incident``) paged it: its first firing, or the one that named its key."""
        if self.scope == "global" or self.key == incident.key:
            return self.fired_ms
        return self.named_ms.get(incident.key, self.fired_ms)


def parse_labels(document: Mapping[str, Any]) -> list[Incident]:
    """The incidents of a labels document, with a clear error for a malformed one.

    >>> parse_labels({"incidents": [{"id": "x", "scope": "room", "key": "r", "kind": "crash",
    ...                              "start": "2026-11-22T05:00:00Z", "end": "soon"}]})
    Traceback (most recent call last):
    ...
    ValueError: labels: incident 0 ('x'): end: ts 'soon' is not RFC 3339 (e.g. 2026-11-22T05:00:00Z)
    """
    items = document.get("incidents") if isinstance(document, Mapping) else None
    if not isinstance(items, list):
        raise ValueError('labels: expected {"incidents": [...]}')
    incidents = []
    for index, item in enumerate(items):
        where = f"labels: incident {index} ({item.get('id')!r})" if isinstance(item, Mapping) else f"labels: incident {index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected an object")
        missing = [name for name in ("id", "scope", "key", "start", "end") if name not in item]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        times = {}
        for name in ("start", "end"):
            try:
                times[name] = parse_event_time(item[name])
            except ValueError as exc:
                raise ValueError(f"{where}: {name}: {exc}") from None
        if times["end"] < times["start"]:
            raise ValueError(f"{where}: end is before start")
        incidents.append(Incident(id=str(item["id"]), scope=str(item["scope"]), key=str(item["key"]),
                                  kind=str(item.get("kind", "")), start_ms=times["start"], end_ms=times["end"]))
    return incidents


def alert_episodes(alerts: Iterable[Alert]) -> list[AlertEpisode]:
    """One episode per (fingerprint, starts_at) that fired, in firing order."""
    fired: dict[tuple[str, int], Alert] = {}
    first_fired: dict[tuple[str, int], int] = {}
    named: dict[tuple[str, int], dict[str, int]] = {}
    ended: dict[tuple[str, int], int] = {}
    for alert in alerts:
        episode = (alert.fingerprint, alert.starts_at)
        if alert.status == "firing":
            fired.setdefault(episode, alert)
            first_fired[episode] = min(first_fired.get(episode, alert.event_ts), alert.event_ts)
            rooms = named.setdefault(episode, {})
            for room in alert.affected:
                rooms[room] = min(rooms.get(room, alert.event_ts), alert.event_ts)
        else:
            ended[episode] = alert.ends_at if alert.ends_at is not None else alert.event_ts
    episodes = [
        AlertEpisode(fingerprint=alert.fingerprint, scope=alert.scope, key=alert.key,
                     affected=frozenset(named[episode]), fired_ms=first_fired[episode],
                     ended_ms=ended.get(episode, math.inf), starts_at=alert.starts_at, named_ms=named[episode])
        for episode, alert in fired.items()
    ]
    return sorted(episodes, key=lambda episode: (episode.fired_ms, episode.fingerprint))


def nearest_rank(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values: the p95 of 20 delays is the 19th.

    >>> nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5), nearest_rank([float(i) for i in range(1, 21)], 0.95)
    (2.0, 19.0)
    """
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Match:
    """An incident and the first firing that detected it (``fired_ms`` None: missed)."""

    incident: Incident
    fired_ms: int | None
    fingerprint: str | None

    @property
    def delay_s(self) -> float | None:
        return None if self.fired_ms is None else (self.fired_ms - self.incident.start_ms) / 1000.0


def match_incidents(episodes: Iterable[AlertEpisode], incidents: Iterable[Incident],
                    grace_s: float = GRACE_S) -> list[Match]:
    """Each incident's detection: the earliest covering episode firing between its start and its end + grace."""
    grace_ms = grace_s * 1000.0
    ordered = list(episodes)
    matches = []
    for incident in incidents:
        firings = [(e.found_ms(incident), e.fingerprint) for e in ordered
                   if e.covers(incident) and incident.start_ms <= e.found_ms(incident) <= incident.end_ms + grace_ms]
        first = min(firings) if firings else None
        matches.append(Match(incident, first[0] if first else None, first[1] if first else None))
    return matches


def overlapped(episode: AlertEpisode, incidents: Iterable[Incident], grace_s: float = GRACE_S) -> list[Incident]:
    """The incidents ``episode`` covers and overlaps in time (each stretched by the grace); none: a false alert."""
    grace_ms = grace_s * 1000.0
    return [i for i in incidents if episode.covers(i) and episode.fired_ms <= i.end_ms + grace_ms
            and episode.ended_ms >= i.start_ms]


def score_alerts(
    alerts: Iterable[Alert],
    labels: Mapping[str, Any],
    room_days: float,
    grace_s: float = GRACE_S,
) -> dict[str, Any]:
    """The evaluate JSON object (see the module docstring for the rules)."""
    if not room_days > 0:
        raise ValueError(f"room_days must be > 0, got {room_days}")
    incidents = parse_labels(labels)
    episodes = alert_episodes(alerts)
    delays = [m.delay_s for m in match_incidents(episodes, incidents, grace_s) if m.delay_s is not None]
    false_alerts = sum(1 for e in episodes if not overlapped(e, incidents, grace_s))
    detected, total = len(delays), len(episodes)
    recall = detected / len(incidents) if incidents else 1.0
    precision = (total - false_alerts) / total if total else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays.sort()
    delay_s = ({"p50": round(nearest_rank(delays, 0.5), 3), "p95": round(nearest_rank(delays, 0.95), 3),
                "max": round(delays[-1], 3)} if delays else {"p50": None, "p95": None, "max": None})
    return {
        "incidents": len(incidents),
        "detected": detected,
        "recall": round(recall, 4),
        "precision": round(precision, 4),
        "f1": round(f1, 4),
        "delay_s": delay_s,
        "false_alerts": false_alerts,
        "false_alerts_per_room_day": round(false_alerts / room_days, 4),
        "alerts": total,
    }
