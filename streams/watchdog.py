"""Sending the alert engine's Watchdog (``alerting/watchdog.py``) from the worker that runs the engine.

A Faust timer, so a blocked event loop sends nothing. Each tick sends a copy
when one is due and this worker both holds the decisions partition (runs
the alert engine) and is live by ``core.health``'s rule: a worker that is
stuck must not vouch for itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from alerting.notify.http import HttpPoster
from alerting.watchdog import WatchdogPolicy, watchdog_payload
from core.health import Health
from core.timeutil import Clock, SystemClock

log = logging.getLogger("outagewatch.detection")


class WorkerLoop(Protocol):
    """What the sender needs of the worker's app (``streams.faust_io.FaustIO``)."""

    @property
    def app_id(self) -> str: ...
    def every(self, seconds: float, name: str, tick: Callable[[], Awaitable[None]]) -> None: ...
    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None: ...


class WatchdogSender:
    def __init__(self, io: WorkerLoop, alertmanager_url: str, policy: WatchdogPolicy, health: Health,
                 engine_active: Callable[[], bool], clock: Clock | None = None) -> None:
        self.io = io
        self.url = alertmanager_url.rstrip("/") + "/api/v2/alerts"
        self.policy = policy
        self.health = health
        self.engine_active = engine_active
        self.clock = clock or SystemClock()
        self.poster = HttpPoster(timeout_seconds=min(10.0, max(1.0, policy.interval_seconds)))
        self.started_ms = self.clock.now_ms()
        self.sent = 0
        self.last_sent_ms: int | None = None
        self._last_try_ms: int | None = None
        self._sending: asyncio.Task[None] | None = None
        self._skipped_because: str | None = None
        io.every(1.0, "watchdog", self.tick)
        io.on_shutdown(self._close)

    async def tick(self) -> None:
        now = self.clock.now_ms()
        if self._last_try_ms is not None and now - self._last_try_ms < self.policy.interval_seconds * 1000:
            return
        if self._sending is not None and not self._sending.done():
            return
        why_not = self._why_not()
        if why_not is not None:
            if why_not != self._skipped_because:
                log.info("watchdog: not sent: %s", why_not)
            self._skipped_because = why_not
            return
        self._skipped_because = None
        self._last_try_ms = now
        self._sending = asyncio.ensure_future(self._send(now))

    def _why_not(self) -> str | None:
        if not self.engine_active():
            return "this worker does not run the alert engine (another worker of the group holds its partition)"
        verdict = self.health.verdict()
        if not verdict.live:
            return f"this worker is not live ({verdict.reason})"
        return None

    async def _send(self, now_ms: int) -> None:
        body = watchdog_payload(now_ms, self.started_ms, self.policy, self.io.app_id)
        delivery = await self.poster.post_json(self.url, body)
        if delivery.ok:
            if self.last_sent_ms is None:
                log.info("watchdog: sent to %s, every %gs", self.url, self.policy.interval_seconds)
            self.sent += 1
            self.last_sent_ms = now_ms
        else:
            log.warning("watchdog: Alertmanager at %s did not take it (%s); the next try in %gs", self.url,
                        delivery.reason, self.policy.interval_seconds)

    async def _close(self) -> None:
        await self.poster.close()
