"""Generic webhook: the alert event itself as JSON.

>>> from outagewatch.schemas import Alert
>>> a = Alert(fingerprint="f", status="firing", scope="room", key="r", kind="crash",
...           severity="critical", starts_at=0, event_ts=10_000, summary="r: crash")
>>> sorted(payload(a))
['event_ts', 'fingerprint', 'key', 'kind', 'scope', 'severity', 'starts_at', 'status', 'summary']
"""

from __future__ import annotations

from typing import Any

import msgspec

from alerting.notify import Delivery
from alerting.notify.http import HttpPoster
from outagewatch.schemas import Alert


def payload(alert: Alert) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(alert)
    return body


class WebhookNotifier:
    def __init__(self, url: str, name: str = "webhook", timeout_seconds: float = 10.0) -> None:
        self.name = name
        self.url = url
        self._http = HttpPoster(timeout_seconds)

    async def notify(self, alert: Alert, idempotency_key: str) -> Delivery:
        return await self._http.post_json(self.url, payload(alert), {"Idempotency-Key": idempotency_key})

    async def close(self) -> None:
        await self._http.close()
