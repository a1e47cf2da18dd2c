"""Liveness and readiness of a long-running process, from the progress its loop reports.

The collector, the worker and the sink each keep one ``Health``: what they
were assigned, how much input waits for them, when they last moved (a record
acknowledged, a window closed, a batch written) and what they wait on. The
rule is the same for all three: a process is **not live** when input waits
and nothing has moved for ``stall_seconds``, or when it has had no partition
assignment ``startup_seconds`` after it started. Restarting it is then the
fix; a process that knows why it cannot move and keeps trying (the sink
retrying while ClickHouse is down) is live but **not ready**.

``LivenessGuard`` checks the rule from a thread of its own, so a blocked
event loop is noticed too, and ends the process (logging why) so its
supervisor starts a fresh one.

>>> from core.timeutil import ManualClock
>>> clock = ManualClock(1_000_000)
>>> health = Health("worker", clock, LivenessPolicy(stall_seconds=60, startup_seconds=120))
>>> health.assigned({"client-reports": 8})
>>> health.waiting(2165, "records of client-reports")
>>> clock.advance(30_000); health.verdict().live
True
>>> clock.advance(30_000); verdict = health.verdict()
>>> verdict.live, verdict.reason
(False, '2165 records of client-reports waiting and nothing moved for 60s (since 1970-01-01T00:16:40.000Z)')
>>> health.moved("window closed", event_ms=990_000); health.verdict().live
True
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.config import Settings
from core.timeutil import Clock, SystemClock, format_ms

log = logging.getLogger("outagewatch.health")

# sysexits' EX_TEMPFAIL: "a temporary failure; try again": what a supervisor should do.
EXIT_NOT_LIVE = 75


@dataclass(frozen=True)
class LivenessPolicy:
    stall_seconds: float = 120.0
    startup_seconds: float = 180.0
    exit_when_not_live: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> LivenessPolicy:
        h = settings.health
        return cls(h.stall_seconds, h.startup_seconds, h.exit_when_not_live)


@dataclass(frozen=True)
class Verdict:
    live: bool
    ready: bool
    # Why it is not live, or else why it is not ready ("" when both hold).
    reason: str = ""


class Health:
    """One process's reported progress and the liveness rule over it; safe to share between threads.

    ``needs_assignment``: the process reads partitions a consumer group assigns
    (worker, sink); having none ``startup_seconds`` after start is then not live.
    """

    def __init__(self, name: str, clock: Clock | None = None, policy: LivenessPolicy | None = None,
                 needs_assignment: bool = True) -> None:
        self.name = name
        self.clock = clock or SystemClock()
        self.policy = policy or LivenessPolicy()
        self.needs_assignment = needs_assignment
        self._lock = threading.Lock()
        self._started_ms = self.clock.now_ms()
        self._assigned: dict[str, int] | None = None
        self._waiting: int | None = None
        self._waiting_what = "records"
        self._waiting_since_ms: int | None = None
        self._moved_ms: int | None = None
        self._moved_what = ""
        self._event_ms: int | None = None
        self._blocked: str | None = None
        self._blocked_since_ms: int | None = None
        self._tried_ms: int | None = None
        self._unready: str | None = None
        self._beat_ms: int | None = None

    # -- what the process reports -------------------------------------------------------------------

    def assigned(self, partitions: Mapping[str, int]) -> None:
        """The partitions it now holds, per topic (after every rebalance)."""
        with self._lock:
            self._assigned = {topic: count for topic, count in partitions.items() if count}

    def waiting(self, amount: int | None, what: str = "records") -> None:
        """How much input waits for it (``None``: not known); ``what`` says of what, for the reason."""
        with self._lock:
            now = self.clock.now_ms()
            if amount and not self._waiting:
                self._waiting_since_ms = now
            elif not amount:
                self._waiting_since_ms = None
            self._waiting, self._waiting_what = amount, what

    def moved(self, what: str, event_ms: int | None = None) -> None:
        """It made progress: ``what`` happened, about data of event time ``event_ms`` if known."""
        with self._lock:
            self._moved_ms, self._moved_what = self.clock.now_ms(), what
            if event_ms is not None:
                self._event_ms = max(event_ms, self._event_ms or event_ms)
            self._blocked = self._blocked_since_ms = None

    def blocked(self, reason: str) -> None:
        """It cannot move because of ``reason`` and is retrying: live (it is trying), not ready."""
        with self._lock:
            now = self.clock.now_ms()
            if self._blocked is None:
                self._blocked_since_ms = now
            self._blocked, self._tried_ms = reason, now

    def beat(self) -> None:
        """Its loop ran (called every second or so): once it has beaten, silence for the stall time is not live."""
        with self._lock:
            self._beat_ms = self.clock.now_ms()

    def not_ready(self, reason: str | None) -> None:
        """A phase in which it is live but should not be sent work (``None`` ends it), e.g. table recovery."""
        with self._lock:
            self._unready = reason

    # -- the rule -------------------------------------------------------------------------------------

    def verdict(self) -> Verdict:
        with self._lock:
            now = self.clock.now_ms()
            policy = self.policy
            if self._beat_ms is not None and now - self._beat_ms >= policy.stall_seconds * 1000:
                return Verdict(False, False, f"its loop has not run for {(now - self._beat_ms) / 1000:.0f}s "
                               f"(last at {format_ms(self._beat_ms)})")
            retrying = self._blocked is not None and now - (self._tried_ms or 0) < policy.stall_seconds * 1000
            if self.needs_assignment and self._assigned is None:
                if retrying:
                    return Verdict(True, False, f"{self._blocked} (since {format_ms(self._blocked_since_ms or now)})")
                waited = now - self._started_ms
                if waited >= policy.startup_seconds * 1000:
                    return Verdict(False, False, f"no partition assignment {waited / 1000:.0f}s after start"
                                   + (f" ({self._unready})" if self._unready else ""))
                return Verdict(True, False, self._unready or "waiting for its partition assignment")
            if self._waiting and self._waiting_since_ms is not None:
                still_since = max(self._waiting_since_ms, self._moved_ms or self._started_ms, self._tried_ms or 0)
                if now - still_since >= policy.stall_seconds * 1000:
                    last = (f"; last {self._moved_what} at {format_ms(self._moved_ms)}"
                            if self._moved_ms is not None and self._moved_what else "")
                    return Verdict(False, False, f"{self._waiting} {self._waiting_what} waiting and nothing "
                                   f"moved for {(now - still_since) / 1000:.0f}s (since {format_ms(still_since)})"
                                   + last)
            if self._blocked is not None:
                return Verdict(True, False, f"{self._blocked} (since {format_ms(self._blocked_since_ms or now)})")
            if self._unready is not None:
                return Verdict(True, False, self._unready)
            return Verdict(True, True)

    def snapshot(self) -> dict[str, Any]:
        """Everything the health endpoints show, JSON-ready."""
        verdict = self.verdict()
        with self._lock:
            now = self.clock.now_ms()
            return {
                "process": self.name, "live": verdict.live, "ready": verdict.ready, "reason": verdict.reason,
                "uptime_s": round((now - self._started_ms) / 1000, 1),
                "assigned_partitions": dict(self._assigned or {}),
                "input_waiting": self._waiting, "input_waiting_what": self._waiting_what,
                "input_waiting_since": _iso(self._waiting_since_ms),
                "last_progress": {"what": self._moved_what or None, "wall_time": _iso(self._moved_ms),
                                  "event_time": _iso(self._event_ms)},
                "blocked_on": self._blocked,
                "stall_seconds": self.policy.stall_seconds,
            }

    def last_progress_ms(self) -> tuple[int | None, int | None]:
        """Wall and event time of the last progress (for the metrics)."""
        with self._lock:
            return self._moved_ms, self._event_ms


def _iso(millis: int | None) -> str | None:
    return format_ms(millis) if millis is not None else None


def exit_not_live(health: Health, verdict: Verdict) -> None:
    """Log why, then end the process at once: a stuck loop may never run a graceful shutdown."""
    log.error("%s is not live: %s. Exiting with status %d so that its supervisor starts a fresh one",
              health.name, verdict.reason, EXIT_NOT_LIVE)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_NOT_LIVE)


class LivenessGuard:
    """Checks ``health`` every ``interval_s`` from its own thread; calls ``on_not_live`` once when it fails."""

    def __init__(self, health: Health, on_not_live: Callable[[Health, Verdict], None] = exit_not_live,
                 interval_s: float = 1.0) -> None:
        self.health = health
        self.on_not_live = on_not_live
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{health.name}-liveness", daemon=True)

    def start(self) -> LivenessGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            verdict = self.health.verdict()
            if not verdict.live:
                if self.health.policy.exit_when_not_live:
                    self.on_not_live(self.health, verdict)
                    return
                log.error("%s is not live: %s (exit_when_not_live is off: only reported)", self.health.name,
                          verdict.reason)
                self._stop.wait(self.health.policy.stall_seconds)
