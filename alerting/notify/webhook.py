"""Generic webhook: the alert event itself as JSON.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="f", status="firing", scope="room", key="r", kind="crash",
...           severity="critical", starts_at=0, event_ts=10_000, summary="r: crash")
>>> sorted(payload(a))
['event_ts', 'fingerprint', 'key', 'kind', 'scope', 'severity', 'starts_at', 'status', 'summary']
"""

from __future__ import annotations

from typing import Any

import msgspec

from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert


def payload(alert: Alert) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(alert)
    return body


class WebhookNotifier(JsonPostNotifier):
    def __init__(self, url: str, name: str = "webhook", timeout_seconds: float = 10.0) -> None:
        super().__init__(url, name, timeout_seconds)

    def body(self, alert: Alert) -> Any:
        return payload(alert)
