"""Keeping the pipeline's children running: restart what exits, kill and restart what stops answering.

A child that exits (the liveness guard's status 75, a crash, a SIGKILL) is
started again after a backoff that doubles with each restart in a row (1 s,
2 s, ... up to ``max_delay_s``) and starts over once a child stayed up
``healthy_after_s``. A child whose ``/healthz`` does not answer for
``unanswered_s`` (stopped with SIGSTOP, a frozen host) cannot say so
itself: it is killed and started again (``first_answer_s`` before it ever
answered: a worker's web server starts after its first table recovery). Each step is logged and kept in
``events`` (what, when, why), which the chaos benchmark reads. After
``max_restarts`` restarts in a row the supervisor gives up on that child
and ``failed`` says why, so a crash loop fails the run instead of hiding.

>>> [backoff(n, RestartPolicy()) for n in range(7)]
[1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("outagewatch.pipeline")


class Supervisable(Protocol):
    """What the supervisor needs of a child process (``processes.Child``, ``collector.CollectorProcess``)."""

    @property
    def name(self) -> str: ...

    @property
    def health_url(self) -> str | None: ...

    def start(self) -> Any: ...

    def alive(self) -> bool: ...

    def exit_status(self) -> int | None: ...

    def kill(self) -> None: ...

    def log_tail(self, lines: int = 15) -> str: ...


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    healthy_after_s: float = 60.0
    max_restarts: int = 10
    probe_every_s: float = 2.0
    probe_timeout_s: float = 2.0
    # /healthz unanswered this long: the child is not live and cannot say so (health.stall_seconds).
    unanswered_s: float = 120.0
    # ...before its first answer: a worker serves /healthz only once its first table recovery is done,
    # and reports its start-up itself (core/health.py's start-up rule exits it).
    first_answer_s: float = 600.0


def backoff(restarts_in_a_row: int, policy: RestartPolicy) -> float:
    return float(min(policy.max_delay_s, policy.first_delay_s * 2 ** restarts_in_a_row))


@dataclass
class SupervisorEvent:
    child: str
    at: float  # epoch seconds
    what: str  # "exited", "not live", "killed", "restarted", "restart failed", "gave up"
    detail: str = ""


@dataclass
class _Watch:
    child: Supervisable
    started: float
    last_answer: float
    last_body: dict[str, Any] | None = None
    in_a_row: int = 0
    next_probe: float = 0.0
    reported_not_live: bool = False
    restarts: int = 0
    gave_up: str | None = None
    last_status: int | None = field(default=None)
    answered: bool = False


class Supervisor:
    """Watches ``children`` from a thread of its own until ``stop``."""

    def __init__(self, children: Sequence[Supervisable], policy: RestartPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or RestartPolicy()
        self.clock = clock
        now = clock()
        self._watches = [_Watch(child, now, now) for child in children]
        self.events: list[SupervisorEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(90)

    @property
    def failed(self) -> dict[str, str]:
        """Children given up on, with why."""
        return {w.child.name: w.gave_up for w in self._watches if w.gave_up is not None}

    @property
    def restarts(self) -> dict[str, int]:
        return {w.child.name: w.restarts for w in self._watches}

    def events_of(self, child: str, since: float = 0.0) -> list[SupervisorEvent]:
        with self._lock:
            return [event for event in self.events if event.child == child and event.at >= since]

    def _note(self, child: str, what: str, detail: str = "") -> None:
        with self._lock:
            self.events.append(SupervisorEvent(child, time.time(), what, detail))

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for watch in self._watches:
                if self._stop.is_set():
                    return
                if watch.gave_up is None:
                    self._check(watch)

    def _check(self, watch: _Watch) -> None:
        child, now = watch.child, self.clock()
        if not child.alive():
            status = child.exit_status()
            ran = now - watch.started
            self._note(child.name, "exited", f"status {status} after {ran:.0f}s")
            log.warning("%s exited with status %s after %.0fs; its log ends:\n%s", child.name, status, ran,
                        child.log_tail(10))
            self._restart(watch, ran)
            return
        if child.health_url is None or now < watch.next_probe:
            return
        watch.next_probe = now + self.policy.probe_every_s
        status, body = self._probe(child.health_url)
        if status is not None:
            watch.last_answer, watch.last_status, watch.answered = now, status, True
            watch.last_body = body if isinstance(body, dict) else watch.last_body
            if status == 503 and not watch.reported_not_live:
                watch.reported_not_live = True
                reason = body.get("reason") if isinstance(body, dict) else body
                self._note(child.name, "not live", str(reason))
                log.warning("%s reports it is not live: %s", child.name, reason)
            elif status == 200:
                watch.reported_not_live = False
            return
        silent = now - watch.last_answer
        if silent >= (self.policy.unanswered_s if watch.answered else self.policy.first_answer_s):
            last = watch.last_body or {}
            detail = (f"/healthz has not answered for {silent:.0f}s (last answer: "
                      f"{'live' if last.get('live') else 'not live' if last else 'none'}, input waiting "
                      f"{last.get('input_waiting')})")
            self._note(child.name, "not live", detail)
            log.warning("%s is not live: %s; killing it (SIGKILL) and starting a new one", child.name, detail)
            child.kill()
            self._note(child.name, "killed", "unanswered /healthz")
            self._restart(watch, now - watch.started)

    def _probe(self, url: str) -> tuple[int | None, Any]:
        try:
            with urllib.request.urlopen(url, timeout=self.policy.probe_timeout_s) as answer:  # noqa: S310 - ours
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (OSError, ValueError):
            return None, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def _restart(self, watch: _Watch, ran_s: float) -> None:
        policy = self.policy
        if ran_s >= policy.healthy_after_s:
            watch.in_a_row = 0
        while not self._stop.is_set():
            if watch.in_a_row >= policy.max_restarts:
                watch.gave_up = (f"restarted {watch.in_a_row} times in a row, none stayed up "
                                 f"{policy.healthy_after_s:.0f}s; its log ends:\n{watch.child.log_tail(20)}")
                self._note(watch.child.name, "gave up", watch.gave_up)
                log.error("giving up on %s: %s", watch.child.name, watch.gave_up)
                return
            delay = backoff(watch.in_a_row, policy)
            watch.in_a_row += 1
            log.warning("restarting %s in %.0fs (restart %d in a row)", watch.child.name, delay, watch.in_a_row)
            if self._stop.wait(delay):
                return
            try:
                watch.child.start()
            except Exception as exc:  # noqa: BLE001 - a failed start is retried with a longer backoff
                self._note(watch.child.name, "restart failed", str(exc))
                log.warning("%s did not start: %s", watch.child.name, exc)
                continue
            now = self.clock()
            watch.started = watch.last_answer = now
            watch.next_probe, watch.reported_not_live, watch.last_body, watch.answered = now, False, None, False
            watch.restarts += 1
            self._note(watch.child.name, "restarted", f"restart {watch.in_a_row} in a row")
            log.warning("%s restarted", watch.child.name)
            return
