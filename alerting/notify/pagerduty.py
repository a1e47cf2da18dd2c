"""PagerDuty Events API v2: trigger on firing, resolve on resolved, ``dedup_key`` = fingerprint.

PagerDuty folds triggers with the same ``dedup_key`` into one incident, so a
re-notification updates the incident instead of opening a second one.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000, summary="room-17: crash")
>>> body = payload(a, "R0UTING")
>>> body["event_action"], body["dedup_key"], body["payload"]["severity"], body["payload"]["source"]
('trigger', '68e1', 'critical', 'outagewatch/room/room-17')
>>> payload(Alert(**{**msgspec.structs.asdict(a), "status": "resolved"}), "R0UTING")
{'routing_key': 'R0UTING', 'event_action': 'resolve', 'dedup_key': '68e1'}
"""

from __future__ import annotations

from typing import Any

import msgspec

from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty knows critical, error, warning, info.
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if alert.status == "resolved" else "trigger",
        "dedup_key": alert.fingerprint,
    }
    if alert.status == "resolved":
        return body
    body["payload"] = {
        "summary": alert.summary[:1024],  # PagerDuty's limit
        "severity": SEVERITY.get(alert.severity, "warning"),
        "source": f"outagewatch/{alert.scope}/{alert.key}",
        "timestamp": format_ms(alert.starts_at),
        "component": alert.key,
        "group": alert.labels.get("region") or alert.labels.get("cluster") or alert.scope,
        "class": alert.kind,
        "custom_details": {
            "labels": alert.labels,
            "affected": alert.affected,
            "evidence": msgspec.to_builtins(alert.evidence),
            "event_time": format_ms(alert.event_ts),
        },
    }
    return body


class PagerDutyNotifier(JsonPostNotifier):
    def __init__(
        self, routing_key: str, url: str = DEFAULT_URL, name: str = "pagerduty", timeout_seconds: float = 10.0
    ) -> None:
        if not routing_key:
            raise ValueError("PagerDuty needs a routing key (OUTAGEWATCH_ALERTING_PAGERDUTY_ROUTING_KEY)")
        super().__init__(url, name, timeout_seconds)
        self._routing_key = routing_key

    def body(self, alert: Alert) -> Any:
        return payload(alert, self._routing_key)
