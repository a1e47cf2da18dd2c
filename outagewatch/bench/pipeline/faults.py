"""The chaos benchmark's faults: when each happens, doing it, and when the pipeline is back.

``schedule`` places the faults over a run (pure). ``FaultRunner`` does each
at its time in a thread of its own and then waits for recovery, read from
the processes' own ``/readyz`` and ``/healthz``: a process is back when it
is ready and has moved (a record acknowledged, a window closed, a batch
written) since the fault ended.

>>> [(f.name, f.at_s) for f in schedule(600.0)]
[('sigkill_collector', 90.0), ('sigkill_sink', 180.0), ('sigkill_worker', 336.0), ('restart_broker', 420.0), ('stop_clickhouse', 492.0)]
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("outagewatch.bench.pipeline")

# Where in the run each fault comes (a fraction of its length). The incident starts at 0.5; the worker
# dies at 0.56, after it paged and while the alert is still open: its replacement must not page it again.
PLACES = (("sigkill_collector", 0.15), ("sigkill_sink", 0.3), ("sigkill_worker", 0.56), ("restart_broker", 0.7),
          ("stop_clickhouse", 0.82))
RECOVERY_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Fault:
    name: str
    at_s: float


def schedule(seconds: float) -> list[Fault]:
    return [Fault(name, round(seconds * place, 1)) for name, place in PLACES]


def _get(url: str) -> tuple[int | None, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - our own processes
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (OSError, ValueError):
        return None, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def back(health_url: str, since: float) -> bool:
    """Whether the process at ``health_url`` (its /healthz) is ready and moved after ``since`` (epoch s)."""
    status, body = _get(health_url.replace("/healthz", "/readyz"))
    if status != 200 or not isinstance(body, dict):
        return False
    moved = _epoch(body.get("last_progress", {}).get("wall_time"))
    return moved is not None and moved >= since


@dataclass
class FaultResult:
    fault: str
    at_s: float
    wall_time: float
    outage_s: float | None = None
    recovered: bool = False
    recovery_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"fault": self.fault, "at_s": self.at_s,
                "at": datetime.fromtimestamp(self.wall_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "outage_s": None if self.outage_s is None else round(self.outage_s, 1), "recovered": self.recovered,
                "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 1), **self.detail}


class FaultRunner:
    """Runs ``faults`` against ``pipeline`` and ``stack`` from ``start`` (epoch s); ``results`` once joined."""

    def __init__(self, faults: list[Fault], pipeline: Any, stack: Any, clickhouse_outage_s: float) -> None:
        self.faults = faults
        self.pipeline = pipeline
        self.stack = stack
        self.clickhouse_outage_s = clickhouse_outage_s
        self.results: list[FaultResult] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, started: float) -> FaultRunner:
        for fault in self.faults:
            thread = threading.Thread(target=self._run, args=(fault, started), name=f"fault-{fault.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return [result.as_json() for result in sorted(self.results, key=lambda r: r.at_s)]

    def _run(self, fault: Fault, started: float) -> None:
        time.sleep(max(0.0, started + fault.at_s - time.time()))
        result = FaultResult(fault.name, fault.at_s, time.time())
        log.warning("chaos: %s at %.0fs", fault.name, fault.at_s)
        try:
            ended, watch = getattr(self, f"_{fault.name}")(result)
            self._await_recovery(result, ended, watch)
        except Exception as exc:  # noqa: BLE001 - a fault that could not be done is reported, not hidden
            log.exception("chaos: %s failed", fault.name)
            result.detail["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.results.append(result)

    def _kill(self, name: str, result: FaultResult) -> tuple[float, list[Any]]:
        child = getattr(self.pipeline, name)
        pid = child.pid
        os.kill(pid, signal.SIGKILL)
        result.detail["pid_killed"] = pid
        return time.time(), [child]

    def _sigkill_collector(self, result: FaultResult) -> tuple[float, list[Any]]:
        return self._kill("collector", result)

    def _sigkill_worker(self, result: FaultResult) -> tuple[float, list[Any]]:
        return self._kill("worker", result)

    def _sigkill_sink(self, result: FaultResult) -> tuple[float, list[Any]]:
        return self._kill("sink", result)

    def _restart_broker(self, result: FaultResult) -> tuple[float, list[Any]]:
        result.outage_s = self.stack.restart_broker()
        return time.time(), list(self.pipeline.children)

    def _stop_clickhouse(self, result: FaultResult) -> tuple[float, list[Any]]:
        self.stack.stop_clickhouse()
        time.sleep(self.clickhouse_outage_s)
        self.stack.start_clickhouse()
        result.outage_s = time.time() - result.wall_time
        return time.time(), [self.pipeline.sink]

    def _await_recovery(self, result: FaultResult, ended: float, watch: list[Any],
                        sleep: Callable[[float], None] = time.sleep) -> None:
        pending = {child.name: child for child in watch}
        while pending and time.time() - ended < RECOVERY_TIMEOUT_S:
            for name, child in list(pending.items()):
                if back(child.health_url, ended):
                    result.detail[f"{name}_back_s"] = round(time.time() - ended, 1)
                    del pending[name]
            sleep(0.5)
        result.recovered = not pending
        result.recovery_s = time.time() - ended if not pending else None
        if pending:
            result.detail["not_back"] = sorted(pending)
        supervisor = self.pipeline.supervisor
        if supervisor is not None:
            events = [event for child in watch for event in supervisor.events_of(child.name, since=result.wall_time)]
            result.detail["restarts"] = sorted({event.child for event in events if event.what == "restarted"})
        log.warning("chaos: %s %s in %ss", result.fault, "recovered" if result.recovered else "NOT recovered",
                    None if result.recovery_s is None else round(result.recovery_s, 1))
