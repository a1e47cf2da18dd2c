"""The collector's liveness and readiness (``/healthz``, ``/readyz``) over ``core.health``.

Its input is what it handed to Kafka and Kafka has not acknowledged yet
(``pending_bytes``); it moves each time Kafka acknowledges a request's
records. Bytes waiting while no acknowledgement comes for
``health.stall_seconds`` is a stuck producer: not live. Kafka refusing
(503s) is not a stall: failed sends leave nothing waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from core import schemas
from core.health import Health

WAITING = "bytes sent to Kafka"


def answer(health: Health, which: str, extra_reason: str | None = None) -> web.Response:
    """``which`` is "live" or "ready"; 200 when it holds, else 503 with the reason (and ``extra_reason``)."""
    snapshot: dict[str, Any] = health.snapshot()
    if extra_reason and snapshot["live"]:
        snapshot["ready"] = False
        snapshot["reason"] = "; ".join(part for part in (snapshot["reason"], extra_reason) if part)
    good = bool(snapshot[which])
    status = which if good else f"not {which}"
    return web.Response(status=200 if good else 503, body=schemas.encode({"status": status, **snapshot}),
                        content_type="application/json")


async def beat_forever(health: Health, pending_bytes: Callable[[], int], every_s: float = 1.0) -> None:
    """The event loop's pulse (a loop that stops running is noticed), and what waits for Kafka."""
    while True:
        health.beat()
        health.waiting(pending_bytes(), WAITING)
        await asyncio.sleep(every_s)
