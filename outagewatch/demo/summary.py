"""The demo's closing summary: what was ingested, stored, alerted, and how fast.

>>> from core.schemas import Alert
>>> labels = {"incidents": [{"id": "i1", "scope": "room", "key": "room-1", "kind": "crash",
...                          "start": 1795323600000, "end": 1795324200000}]}
>>> fired = Alert(fingerprint="f", status="firing", scope="room", key="room-1", kind="crash",
...               severity="critical", starts_at=1795323610000, event_ts=1795323620000, summary="s")
>>> [(row["id"], row["detected"], row["delay_s"]) for row in incident_delays(labels, [fired])]
[('i1', True, 20.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.schemas import Alert
from detectors.evaluation import GRACE_S, alert_episodes, match_incidents, parse_labels


def incident_delays(labels: Mapping[str, Any], alerts: Sequence[Alert], grace_s: float = GRACE_S) -> list[dict[str, Any]]:
    """Per labelled incident: was it detected, and how long after its start (``match_incidents``, the evaluate rules)."""
    episodes = alert_episodes(alerts)
    by_fingerprint = {e.fingerprint: e for e in episodes}
    rows = []
    for match in match_incidents(episodes, parse_labels(labels), grace_s):
        incident, delay_s = match.incident, match.delay_s
        by = by_fingerprint[match.fingerprint] if match.fingerprint is not None else None
        rows.append({
            "id": incident.id, "scope": incident.scope, "key": incident.key, "kind": incident.kind,
            "detected": delay_s is not None,
            "delay_s": round(delay_s, 1) if delay_s is not None else None,
            "by": f"{by.scope}:{by.key}" if by is not None else None,
        })
    return rows


def summarise(*, scenario: str, labels: Mapping[str, Any], alerts: Sequence[Alert], sent: int, accepted: int,
              sampled_out: int, stored: int, notifications: int, wall_s: float, where: Mapping[str, str]) -> dict[str, Any]:
    firing = [a for a in alerts if a.status == "firing"]
    return {
        "scenario": scenario,
        "wall_seconds": round(wall_s, 1),
        "reports": {"sent": sent, "accepted": accepted, "sampled_out": sampled_out, "stored": stored,
                    "lost": max(0, accepted - sampled_out - stored)},
        "alerts": {"firing_events": len(firing), "resolved_events": len(alerts) - len(firing),
                   "by_scope": _count_by(firing, "scope"), "notifications_received": notifications},
        "incidents": incident_delays(labels, alerts),
        "where_to_look": dict(where),
    }


def _count_by(alerts: Sequence[Alert], field: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        value = str(getattr(alert, field))
        counts[value] = counts.get(value, 0) + 1
    return counts
