"""PagerDuty Events API v2: trigger on firing, resolve on resolved, ``dedup_key`` = fingerprint.

PagerDuty folds triggers with the same ``dedup_key`` into one incident, so a
re-notification updates the incident instead of opening a second one. The
board and runbook go in ``links`` (shown on the incident), the silence command
in ``custom_details``. PagerDuty refuses an event over 512 KB: an incident
with a huge ``affected`` list or long untrusted labels has its
``custom_details`` trimmed (lists shortened, long strings cut, what was cut
said in ``custom_details.truncated``) until the event fits.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000, summary="room-17: crash")
>>> body = payload(a, "R0UTING")
>>> body["event_action"], body["dedup_key"], body["payload"]["severity"], body["payload"]["source"]
('trigger', '68e1', 'critical', 'outagewatch/room/room-17')
>>> payload(Alert(**{**msgspec.structs.asdict(a), "status": "resolved"}), "R0UTING")
{'routing_key': 'R0UTING', 'event_action': 'resolve', 'dedup_key': '68e1'}
>>> from alerting.links import Links
>>> [link["text"] for link in payload(a, "R0UTING", Links().of(a))["links"]]
['Grafana board', 'Runbook']
"""

from __future__ import annotations

from typing import Any

import msgspec

from alerting.links import AlertLinks, Links
from alerting.notify import clip
from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty knows critical, error, warning, info.
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
MAX_EVENT_BYTES = 512 * 1024
MAX_SUMMARY = 1024  # PagerDuty's limit
# Free-text fields PagerDuty shows in one line; a room key is client input, so bounded.
MAX_FIELD = 255
MAX_DETAIL_TEXT = 1024
MAX_URL = 8192


def size(body: dict[str, Any]) -> int:
    return len(msgspec.json.encode(body))


def payload(alert: Alert, routing_key: str, links: AlertLinks | None = None,
            max_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if alert.status == "resolved" else "trigger",
        "dedup_key": alert.fingerprint,
    }
    if alert.status == "resolved":
        return body
    details: dict[str, Any] = {
        "labels": alert.labels,
        "affected": alert.affected,
        "evidence": msgspec.to_builtins(alert.evidence),
        "event_time": format_ms(alert.event_ts),
    }
    if links is not None:
        details["silence_command"] = clip(links.silence_command, MAX_URL)
    body["payload"] = {
        "summary": clip(alert.summary, MAX_SUMMARY),
        "severity": SEVERITY.get(alert.severity, "warning"),
        "source": clip(f"outagewatch/{alert.scope}/{alert.key}", MAX_FIELD),
        "timestamp": format_ms(alert.starts_at),
        "component": clip(alert.key, MAX_FIELD),
        "group": clip(alert.labels.get("region") or alert.labels.get("cluster") or alert.scope, MAX_FIELD),
        "class": clip(alert.kind, MAX_FIELD),
        "custom_details": details,
    }
    if links is not None:
        shown = [(links.board, "Grafana board"), (links.runbook, "Runbook"),
                 (links.silence_url, "Silence in Alertmanager")]
        # A URL cut short leads nowhere: one too long for a browser (a forged room key) is left out.
        body["links"] = [{"href": href, "text": text} for href, text in shown if 0 < len(href) <= MAX_URL]
    if size(body) > max_bytes:
        _trim(body, max_bytes)
    return body


def _trim(body: dict[str, Any], max_bytes: int) -> None:
    """Shrink ``custom_details`` until the event fits: halve the lists, then cut long strings."""
    details: dict[str, Any] = body["payload"]["custom_details"]
    full = {name: len(details[name]) for name in ("affected", "evidence", "labels")}
    details["labels"] = {clip(k, MAX_FIELD): clip(str(v), MAX_DETAIL_TEXT)
                         for k, v in list(details["labels"].items())}
    details["affected"] = [clip(name, MAX_FIELD) for name in details["affected"]]
    details["evidence"] = [{k: clip(v, MAX_DETAIL_TEXT) if isinstance(v, str) else v for k, v in e.items()}
                           for e in details["evidence"]]
    while size(body) > max_bytes:
        longest = max(("affected", "evidence", "labels"), key=lambda name: len(details[name]))
        kept = len(details[longest]) // 2
        if longest == "labels":
            details["labels"] = dict(list(details["labels"].items())[:kept])
        else:
            details[longest] = details[longest][:kept]
        if all(not details[name] for name in full):
            break
    details["truncated"] = ", ".join(f"{name} {len(details[name])} of {count} shown"
                                     for name, count in full.items() if len(details[name]) < count) \
        or "long values cut"


class PagerDutyNotifier(JsonPostNotifier):
    def __init__(
        self, routing_key: str, url: str = DEFAULT_URL, name: str = "pagerduty", timeout_seconds: float = 10.0,
        links: Links | None = None,
    ) -> None:
        if not routing_key:
            raise ValueError("PagerDuty needs a routing key (OUTAGEWATCH_ALERTING_PAGERDUTY_ROUTING_KEY)")
        super().__init__(url, name, timeout_seconds)
        self._routing_key = routing_key
        self._links = links or Links()

    def body(self, alert: Alert) -> Any:
        return payload(alert, self._routing_key, self._links.of(alert))
