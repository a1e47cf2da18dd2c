"""``--alerts-out``: every page of a replay, with its evidence and what it matched.

A page is a firing alert event no muter held back (what on-call would
receive), or the resolution of such a firing; a resolved event of an alert
that never paged is left out. Each record is one JSON object: the alert event as published (times in RFC
3339), its evidence and labels, and ``matched``: the ids of the incidents
its firing episode covers and overlaps (the ``detectors.evaluation`` rules),
or ``false`` when it matched none, a false page.

>>> from core.schemas import Alert
>>> from detectors.evaluation import parse_labels
>>> incidents = parse_labels({"incidents": [{"id": "i1", "scope": "room", "key": "room-1", "kind": "crash",
...                                          "start": "2026-11-22T05:00:00Z", "end": "2026-11-22T05:05:00Z"}]})
>>> page = Alert(fingerprint="f1", status="firing", scope="room", key="room-1", kind="crash",
...              severity="critical", starts_at=1795323620000, event_ts=1795323620000, summary="crash spike")
>>> stray = Alert(fingerprint="f2", status="firing", scope="room", key="room-2", kind="crash",
...               severity="warning", starts_at=1795323620000, event_ts=1795323620000, summary="crash spike")
>>> unheard = Alert(fingerprint="f3", status="resolved", scope="room", key="room-3", kind="crash",
...                 severity="warning", starts_at=1795323620000, event_ts=1795323650000, summary="crash spike")
>>> [(r["key"], r["event_ts"], r["matched"]) for r in page_records([page, stray, unheard], incidents)]
[('room-1', '2026-11-22T05:00:20.000Z', ['i1']), ('room-2', '2026-11-22T05:00:20.000Z', False)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from alerting.policy import pages_on_call
from alerting.stage import Emitted
from core.schemas import Alert
from core.timeutil import format_ms
from detectors.evaluation import GRACE_S, Incident, alert_episodes, overlapped


def on_call_pages(emitted: Iterable[Emitted]) -> list[Alert]:
    """The alert events that reached on-call: not muted, and not a notice (``alerting.policy.pages_on_call``)."""
    return [event.alert for event in emitted if event.muted is None and pages_on_call(event.alert)]


def page_records(pages: Sequence[Alert], incidents: Sequence[Incident], grace_s: float = GRACE_S) -> list[dict[str, Any]]:
    """One record per page, in the order they were paged."""
    matched: dict[tuple[str, int], list[str] | bool] = {}
    for episode in alert_episodes(pages):
        hits = [incident.id for incident in overlapped(episode, incidents, grace_s)]
        matched[(episode.fingerprint, episode.starts_at)] = hits or False
    records = []
    for alert in pages:
        if (alert.fingerprint, alert.starts_at) not in matched:
            continue  # the resolution of an alert that never paged
        record: dict[str, Any] = msgspec.to_builtins(alert)
        record["event_ts"] = format_ms(alert.event_ts)
        record["starts_at"] = format_ms(alert.starts_at)
        if alert.ends_at is not None:
            record["ends_at"] = format_ms(alert.ends_at)
        record["matched"] = matched[(alert.fingerprint, alert.starts_at)]
        records.append(record)
    return records
