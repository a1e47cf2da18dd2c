"""What the demo shows live, read from the real topics the pipeline writes.

A background thread follows `room-health` and `alerts` from their ends at
demo start, and polls the worker's consumer lag; the view reads a snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from outagewatch import schemas
from outagewatch.config import Settings
from outagewatch.pipeline.follow import assign_topics

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


class Watcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.live = Live()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watcher", daemon=True)
        self._consumer = self._subscribe()

    def _subscribe(self):  # type: ignore[no-untyped-def]
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap, enable_auto_commit=False,
                                 group_id=None, max_poll_records=5000)
        partitions = assign_topics(consumer, (self.settings.topics.room_health, self.settings.topics.alerts))
        # Start at the end now: only what this demo run produces.
        consumer.seek_to_end(*partitions)
        for partition in partitions:
            consumer.position(partition)
        return consumer

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def snapshot_alerts(self) -> list[schemas.Alert]:
        with self.lock:
            return list(self.live.alerts)

    def _run(self) -> None:
        last_lag = 0.0
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=500)
                for partition, records in batches.items():
                    for record in records:
                        self._apply(partition.topic, record.value)
                if time.monotonic() - last_lag > 2:
                    last_lag = time.monotonic()
                    lag = worker_lag(self.settings)
                    with self.lock:
                        self.live.lag = lag
            except Exception as exc:  # noqa: BLE001 - the view must not take the demo down
                log.warning("demo watcher: %s", exc)
                time.sleep(1)

    def _apply(self, topic: str, value: bytes) -> None:
        try:
            if topic == self.settings.topics.alerts:
                alert = schemas.decode(value, schemas.Alert)
                with self.lock:
                    self.live.alerts.append(alert)
                    if alert.status == "firing":
                        self.live.firing[alert.fingerprint] = alert
                    else:
                        self.live.firing.pop(alert.fingerprint, None)
                return
            window = schemas.decode(value, schemas.RoomHealth)
        except schemas.SchemaError as exc:
            log.warning("demo watcher: undecodable message on %s: %s", topic, exc)
            return
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
    """Records the worker has not consumed yet (its consumer group on client-reports)."""
    from outagewatch.pipeline.running import group_lag

    return group_lag(settings.kafka.bootstrap, settings.streams.app_id, settings.topics.client_reports)
