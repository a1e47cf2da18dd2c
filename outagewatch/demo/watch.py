"""What the demo shows live, read from the real topics the pipeline writes.

A background thread follows `room-health` and `alerts` from their ends at
demo start, and polls the worker's consumer lag; the view reads a snapshot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from core import schemas
from core.config import Settings
from outagewatch.pipeline.follow import RunFollower

log = logging.getLogger(__name__)


@dataclass
class Replay:
    """Progress of the simulator feeding the collector (written by the feeder thread)."""

    scenario: str = ""
    total_event_s: float = 0.0
    done_event_s: float = 0.0
    event_ms: int = 0
    reports_sent: int = 0
    started_wall: float = field(default_factory=time.monotonic)
    finished: bool = False


@dataclass
class Live:
    event_ms: int = 0
    global_end: int = 0
    listeners: float = 0.0
    reports_per_s: float = 0.0
    error_ratio: float = 0.0
    windows: int = 0
    lag: int | None = None
    room_windows: dict[str, schemas.RoomHealth] = field(default_factory=dict)
    firing: dict[str, schemas.Alert] = field(default_factory=dict)
    alerts: list[schemas.Alert] = field(default_factory=list)


class Watcher(RunFollower):
    """What the live view shows, from the moment the watcher is made."""

    name = "demo-watcher"

    def __init__(self, settings: Settings) -> None:
        self.live = Live()
        self._last_lag = 0.0
        # Start at the end now: only what this demo run produces.
        super().__init__(settings, from_start=False)

    def snapshot_alerts(self) -> list[schemas.Alert]:
        with self.lock:
            return list(self.live.alerts)

    def on_tick(self) -> None:
        if time.monotonic() - self._last_lag > 2:
            self._last_lag = time.monotonic()
            lag = worker_lag(self.settings)
            with self.lock:
                self.live.lag = lag

    def on_alert(self, alert: schemas.Alert, arrived_ms: int) -> None:
        with self.lock:
            self.live.alerts.append(alert)
            if alert.status == "firing":
                self.live.firing[alert.fingerprint] = alert
            else:
                self.live.firing.pop(alert.fingerprint, None)

    def on_window(self, window: schemas.RoomHealth, arrived_ms: int) -> None:
        with self.lock:
            live = self.live
            live.windows += 1
            live.event_ms = max(live.event_ms, window.window_end)
            # Global windows are merged from every partition, so they trail the
            # room windows: keep the newest global one on its own clock.
            if window.scope == "global" and window.window_end >= live.global_end:
                live.global_end = window.window_end
                seconds = max((window.window_end - window.window_start) / 1000, 1)
                live.listeners = window.listeners
                live.reports_per_s = window.reports / seconds
                live.error_ratio = window.error_ratio
            elif window.scope == "room":
                live.room_windows[window.key] = window


def worker_lag(settings: Settings) -> int | None:
    """Records the worker has not consumed yet: client reports, and the decisions its alerting agent has not judged.

    The demo is drained only when both are 0, so its summary sees the alerts
    of the last windows (detection can trail the windows when it catches up).
    """
    from outagewatch.pipeline.running import group_lag

    group = settings.streams.app_id
    return group_lag(settings.kafka.bootstrap, group, settings.topics.client_reports, f"{group}-decisions")
