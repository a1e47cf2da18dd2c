"""The one HTTP POST every notifier uses, and how its outcome is classified.

>>> classify(503).retryable, classify(429).retryable, classify(400).retryable, classify(202).ok
(True, True, False, True)
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from alerting.notify import Delivery
from core.schemas import Alert

RETRYABLE_STATUS = frozenset({408, 425, 429})


def classify(status: int, body: str = "") -> Delivery:
    if 200 <= status < 300:
        return Delivery(ok=True)
    retryable = status >= 500 or status in RETRYABLE_STATUS
    return Delivery(ok=False, retryable=retryable, reason=f"HTTP {status}: {body[:200]}".rstrip(": "))


class HttpPoster:
    """A lazily created aiohttp session (it must be made inside the running loop)."""

    def __init__(self, timeout_seconds: float = 10.0, headers: dict[str, str] | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._headers = {"User-Agent": "outagewatch-alerting", **(headers or {})}
        self._session: aiohttp.ClientSession | None = None

    async def post_json(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Delivery:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        data = msgspec.json.encode(body)
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._session.post(url, data=data, headers=request_headers) as response:
                text = await response.text(errors="replace")
                return classify(response.status, text)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Delivery(ok=False, retryable=True, reason=f"{type(exc).__name__}: {exc}"[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class JsonPostNotifier:
    """A notifier that POSTs one JSON body per alert event; subclasses say which body.

    The ``Idempotency-Key`` header lets a receiver drop a retried delivery.
    """

    def __init__(self, url: str, name: str, timeout_seconds: float = 10.0) -> None:
        self.name = name
        self.url = url
        self._http = HttpPoster(timeout_seconds)

    def body(self, alert: Alert) -> Any:
        raise NotImplementedError

    async def notify(self, alert: Alert, idempotency_key: str) -> Delivery:
        return await self._http.post_json(self.url, self.body(alert), {"Idempotency-Key": idempotency_key})

    async def close(self) -> None:
        await self._http.close()
