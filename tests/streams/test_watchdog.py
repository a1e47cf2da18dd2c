"""When the worker sends the Watchdog: only while it runs the alert engine and is live, once per interval."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from alerting.notify import Delivery
from alerting.watchdog import WatchdogPolicy
from core.health import Health, LivenessPolicy
from core.timeutil import ManualClock
from streams.watchdog import WatchdogSender


class FakeLoop:
    app_id = "outagewatch-streams"

    def every(self, seconds: float, name: str, tick: Callable[[], Awaitable[None]]) -> None:
        pass

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        pass


class Poster:
    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def post_json(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Delivery:
        self.bodies.append((url, body))
        return Delivery(ok=True)


def test_sent_once_per_interval_only_by_the_live_engine_worker() -> None:
    clock = ManualClock(1_795_323_600_000)
    health = Health("worker", clock, LivenessPolicy(stall_seconds=60))
    health.assigned({"client-reports": 8})
    engine = {"active": False}
    sender = WatchdogSender(FakeLoop(), "http://am:9093/", WatchdogPolicy(interval_seconds=30), health,
                            lambda: engine["active"], clock)
    poster = Poster()
    sender.poster = poster  # type: ignore[assignment]

    async def ticks(seconds: int) -> None:
        for _ in range(seconds):
            await sender.tick()
            await asyncio.sleep(0)
            clock.advance(1_000)

    asyncio.run(ticks(5))
    assert poster.bodies == [], "another worker runs the alert engine"
    engine["active"] = True
    asyncio.run(ticks(61))
    assert len(poster.bodies) == 3 and sender.sent == 3  # at 5 s, 35 s and 65 s
    url, body = poster.bodies[0]
    assert url == "http://am:9093/api/v2/alerts" and body[0]["labels"]["alertname"] == "Watchdog"
    health.waiting(500)
    clock.advance(60_000)  # input waits and nothing moves: this worker must not vouch for itself
    asyncio.run(ticks(60))
    assert len(poster.bodies) == 3
