"""Notifiers: one module per receiver, one ``Notifier`` protocol.

A notifier turns one alert into one HTTP request and says whether a failure
is worth retrying (connection errors, timeouts, 408, 429, 5xx) or not (other
4xx: the request itself is wrong and would fail again). Retries, muting and
deduplication are the dispatcher's job, not the notifier's.

HTTP goes through aiohttp: the workers are asyncio (Faust), so a notifier
must not block the event loop, and aiohttp is already a runtime dependency
(the collector serves with it); one pooled session per notifier reuses
connections across a burst of pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.schemas import Alert

# How a receiver's field cut to its limit ends (client text, such as a room key, is bounded everywhere).
TRUNCATED = "… (truncated)"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked.

    >>> clip("x" * 40, 20)
    'xxxxxxx… (truncated)'
    """
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


@dataclass(frozen=True)
class Delivery:
    ok: bool
    retryable: bool = False
    reason: str = ""


class Notifier(Protocol):
    name: str

    async def notify(self, alert: Alert, idempotency_key: str) -> Delivery: ...

    async def close(self) -> None: ...


def idempotency_key(alert: Alert, renotify: bool = False) -> str:
    """Same event, same key: receivers that honour ``Idempotency-Key`` drop a retried duplicate.

    A re-notification is a new page on purpose, so it carries its event time.

    >>> from core.schemas import Alert
    >>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="r", kind="k",
    ...           severity="warning", starts_at=1000, event_ts=20_000, summary="")
    >>> idempotency_key(a), idempotency_key(a, renotify=True)
    ('68e1-firing-1000', '68e1-firing-1000-20000')
    """
    key = f"{alert.fingerprint}-{alert.status}-{alert.starts_at}"
    return f"{key}-{alert.event_ts}" if renotify else key
