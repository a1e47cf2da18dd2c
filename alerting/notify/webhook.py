"""Generic webhook: the alert event itself as JSON, with its links.

``links`` holds the board, runbook and silence links (``alerting.links``);
a receiver decoding the body as an ``Alert`` ignores it.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="f", status="firing", scope="room", key="r", kind="crash",
...           severity="critical", starts_at=0, event_ts=10_000, summary="r: crash")
>>> sorted(payload(a))
['event_ts', 'fingerprint', 'key', 'kind', 'scope', 'severity', 'starts_at', 'status', 'summary']
>>> sorted(payload(a, Links().of(a))["links"])
['board', 'runbook', 'silence_command', 'silence_url']
"""

from __future__ import annotations

from typing import Any

import msgspec

from alerting.links import AlertLinks, Links
from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert


def payload(alert: Alert, links: AlertLinks | None = None) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(alert)
    if links is not None:
        body["links"] = msgspec.to_builtins(links)
    return body


class WebhookNotifier(JsonPostNotifier):
    def __init__(self, url: str, name: str = "webhook", timeout_seconds: float = 10.0,
                 links: Links | None = None) -> None:
        super().__init__(url, name, timeout_seconds)
        self._links = links or Links()

    def body(self, alert: Alert) -> Any:
        return payload(alert, self._links.of(alert))
