"""A short cache with a single-flight refresh: one ClickHouse read per period, whatever the visitors.

- Within ``ttl`` of the last attempt every visitor gets the cached snapshot.
- Past it, the first visitor starts one refresh; everyone who comes while it
  runs waits on that same refresh (at most ``wait_seconds``), never a second.
- A refresh that fails or is too slow leaves the last good snapshot in place,
  served as stale with the reason; a failed attempt also counts as an attempt,
  so a ClickHouse that is down is asked again once a period, not per visitor.
- Before the first good read there is no snapshot: ``View.snapshot`` is None.

Time comes from ``clock`` (seconds), so tests are exact.

>>> import asyncio
>>> from dashboards.status.model import Snapshot
>>> calls = []
>>> def load(now: int) -> Snapshot:
...     calls.append(now)
...     return Snapshot(as_of=now, components=(), incidents=())
>>> now = [100.0]
>>> cache = SnapshotCache(load, ttl=15, wait_seconds=1, clock=lambda: now[0])
>>> async def visits(n: int) -> list[View]:
...     return list(await asyncio.gather(*(cache.get() for _ in range(n))))
>>> views = asyncio.run(visits(50))
>>> len(calls), views[0].snapshot.as_of, views[-1].stale
(1, 100, False)
>>> now[0] = 116.0
>>> views = asyncio.run(visits(50))
>>> len(calls), views[0].snapshot.as_of
(2, 116)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dashboards.status.model import Snapshot

log = logging.getLogger("dashboards.status")

Load = Callable[[int], Snapshot]


@dataclass(frozen=True)
class View:
    """What one visitor is served: the snapshot (None before any good read) and whether it is stale."""

    snapshot: Snapshot | None
    stale: bool
    reason: str = ""


class SnapshotCache:
    def __init__(self, load: Load, ttl: float, wait_seconds: float, clock: Callable[[], float]) -> None:
        self.load = load
        self.ttl = ttl
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.error = ""
        self.refreshes = 0
        self.failures = 0
        self._attempted_at: float | None = None
        self._inflight: asyncio.Future[None] | None = None

    def _due(self) -> bool:
        return self._attempted_at is None or self.clock() - self._attempted_at >= self.ttl

    async def get(self) -> View:
        if self._due() and self._inflight is None:
            self._attempted_at = self.clock()
            self._inflight = asyncio.ensure_future(self._refresh(int(self._attempted_at)))
        if self._inflight is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._inflight), self.wait_seconds)
            except TimeoutError:
                if self.snapshot is None or not self.error:
                    self.error = f"ClickHouse has not answered within {self.wait_seconds:g} s"
                return View(self.snapshot, stale=True, reason=self.error)
        return View(self.snapshot, stale=bool(self.error), reason=self.error)

    async def _refresh(self, now: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            snapshot = await loop.run_in_executor(None, self.load, now)
        except Exception as exc:  # noqa: BLE001 - any read failure keeps the last good page
            self.failures += 1
            self.error = f"ClickHouse read failed: {type(exc).__name__}"
            log.warning("status page: refresh failed, serving the page of %s: %s",
                        self.snapshot.as_of if self.snapshot else "nothing yet", exc)
        else:
            self.snapshot = snapshot
            self.error = ""
            self.refreshes += 1
        finally:
            self._inflight = None
