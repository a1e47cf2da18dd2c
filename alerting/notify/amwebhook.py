"""The generic webhook in Alertmanager's shape (webhook payload version 4).

Receivers written for Alertmanager's ``webhook_config`` (chat bridges,
ticketing hooks, runbook automation) read this unchanged: one notification is
one group holding this one alert, grouped by its identity labels. As
Alertmanager does, a firing alert's ``endsAt`` is the zero time
(``0001-01-01T00:00:00Z``) and a resolved one's is when it recovered;
``externalURL`` is the Alertmanager (when set) or Grafana a human opens.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000, summary="room-17: crash")
>>> body = payload(a, "webhook-1", Links())
>>> body["version"], body["status"], body["receiver"]
('4', 'firing', 'webhook-1')
>>> print(body["groupKey"])
{}:{alertname="crash", key="room-17", scope="room"}
>>> alert = body["alerts"][0]
>>> alert["startsAt"], alert["endsAt"], alert["annotations"]["runbook_url"]
('2026-11-22T05:00:00.000Z', '0001-01-01T00:00:00Z', 'https://runbooks.example.com/outagewatch/crash')
"""

from __future__ import annotations

from typing import Any

from alerting.links import Links
from alerting.notify.alertmanager import am_annotations, am_labels
from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms

VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what Alertmanager sends for "not ended"
GROUP_BY = ("alertname", "scope", "key")


def payload(alert: Alert, receiver: str, links: Links) -> dict[str, Any]:
    alert_links = links.of(alert)
    all_labels = am_labels(alert)
    notes = am_annotations(alert, alert_links)
    group = {name: all_labels[name] for name in sorted(GROUP_BY) if name in all_labels}
    # Alertmanager's group key: the route's matchers ({} for the root) and the group labels.
    group_key = "{}:{" + ", ".join(f"{name}={_quoted(value)}" for name, value in group.items()) + "}"
    if alert.status == "resolved":
        ends = format_ms(max(alert.ends_at if alert.ends_at is not None else alert.event_ts, alert.starts_at))
    else:
        ends = ZERO_TIME
    return {
        "version": VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": receiver,
        "groupLabels": group,
        # One alert per notification: what all its alerts share is all of it.
        "commonLabels": all_labels,
        "commonAnnotations": notes,
        "externalURL": (links.alertmanager_url or links.grafana_url).rstrip("/"),
        "alerts": [
            {
                "status": alert.status,
                "labels": all_labels,
                "annotations": notes,
                "startsAt": format_ms(alert.starts_at),
                "endsAt": ends,
                "generatorURL": alert_links.board,
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class AlertmanagerWebhookNotifier(JsonPostNotifier):
    """POSTs Alertmanager's webhook payload (version 4) to a receiver written for Alertmanager."""

    def __init__(self, url: str, name: str = "am-webhook", timeout_seconds: float = 10.0,
                 links: Links | None = None) -> None:
        super().__init__(url, name, timeout_seconds)
        self._links = links or Links()

    def body(self, alert: Alert) -> Any:
        return payload(alert, self.name, self._links)
