"""One whole-pipeline bench run on the real stack, isolated from everything else on it.

``BenchRun`` gives the run its own topics, consumer groups and ClickHouse
database (``outagewatch.pipeline.isolation``), applies the migrations,
starts a webhook receiver and the pipeline (collector, worker, sink), and
follows ``room-health`` and ``alerts`` while a ``Sampler`` records the
consumer lags and each process's memory. The load runs in a child process
(``load.run_plan``). On exit it stops what it started, deletes its topics,
and drops its database (only one it created).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from core import schemas
from core.config import Settings
from outagewatch.bench.pipeline.cost import stack_pids
from outagewatch.bench.pipeline.figures import loss_account
from outagewatch.bench.pipeline.load import ONSET_CODE, LoadPlan, merge_parts, run_plan
from outagewatch.pipeline.follow import RunFollower
from outagewatch.pipeline.processes import cpu_seconds, memory_mib

log = logging.getLogger("outagewatch.bench.pipeline")

API_KEY = "bench:bench-key"
# The collector's per-key rate limit stays out of the way: these benches measure shedding (503) under load.
# The load posts with the pipeline's fleet key (a relay: see outagewatch.pipeline.running.FLEET_KEY_NAME).
COLLECTOR_ENV = {"OUTAGEWATCH_COLLECTOR_API_KEYS": API_KEY, "OUTAGEWATCH_COLLECTOR_RATE_PER_SECOND": "100000000",
                 "OUTAGEWATCH_COLLECTOR_RATE_BURST": "100000000"}


def past_start_ms(seconds: float, speed: float) -> int:
    """An event-time start that a load running ``speed`` times the wall clock for ``seconds`` ends at now.

    A compressed warm-up that started at now would run ahead of the clock, and the collector refuses
    reports dated past ``event_time.max_ahead_seconds`` (the worker does too, against its records' time).

    >>> now = time.time_ns() // 1_000_000
    >>> abs(past_start_ms(60, 10.0) - (now - 600_000)) < 1_000
    True
    """
    return time.time_ns() // 1_000_000 - int(seconds * 1000 * speed)


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    load1, load5, _ = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_1m": round(load1, 2), "loadavg_5m": round(load5, 2),
            "note": "Kafka, ClickHouse, the collector, worker, sink and the load generator share these cores"}


def _cores(before: float | None, after: float | None, elapsed_s: float) -> float | None:
    """CPU cores a process used on average between two CPU-seconds readings.

    >>> _cores(10.0, 13.0, 2.0), _cores(None, 3.0, 2.0)
    (1.5, None)
    """
    if before is None or after is None or elapsed_s <= 0:
        return None
    return round((after - before) / elapsed_s, 2)


class Follower(RunFollower):
    """Follows ``room-health`` and ``alerts`` of the run: firing alerts and room windows, with arrival wall time."""

    name = "bench-follower"

    def __init__(self, settings: Settings, rooms: set[str]) -> None:
        self.rooms = rooms
        self.alerts: list[tuple[int, schemas.Alert]] = []
        self.windows: list[tuple[int, schemas.RoomHealth]] = []
        # The run's own topics: all of it is this run.
        super().__init__(settings, from_start=True)

    def on_alert(self, alert: schemas.Alert, arrived_ms: int) -> None:
        with self.lock:
            self.alerts.append((arrived_ms, alert))

    def on_window(self, window: schemas.RoomHealth, arrived_ms: int) -> None:
        if window.scope == "room" and window.key in self.rooms:
            with self.lock:
                self.windows.append((arrived_ms, window))

    def first_firing(self, room: str, after_event_ms: int) -> tuple[int, schemas.Alert] | None:
        """The first firing alert about ``room`` (its scope, or listing it as affected) at or after an event time."""
        with self.lock:
            for arrived, alert in self.alerts:
                about = (alert.scope == "room" and alert.key == room) or room in alert.affected
                if alert.status == "firing" and about and alert.event_ts >= after_event_ms:
                    return arrived, alert
        return None

    def windows_of(self, room: str, since_ms: int, until_ms: int) -> list[schemas.RoomHealth]:
        """The room's windows overlapping an event-time range, each in its last published version."""
        with self.lock:
            latest = {window.window_start: window for _, window in self.windows
                      if window.key == room and window.window_end > since_ms and window.window_start < until_ms}
        return [latest[start] for start in sorted(latest)]

    def first_window(self, room: str, after_event_ms: int, code: str, min_clients: float) -> tuple[int, Any] | None:
        """The first closed window of ``room`` from the onset on with at least ``min_clients`` failing with ``code``."""
        with self.lock:
            for arrived, window in self.windows:
                if (window.key == room and window.window_end > after_event_ms
                        and window.error_clients_by_code.get(code, 0.0) >= min_clients):
                    return arrived, window
        return None


class Sampler:
    """Every ``interval_s``: both consumer groups' lag on client-reports, each process's memory, and the rooms
    the collector says it samples (``/metrics``: room -> keep ratio)."""

    def __init__(self, pipeline: Any, interval_s: float = 1.0) -> None:
        self.pipeline = pipeline
        self.interval_s = interval_s
        self.lags: list[tuple[float, int | None, int | None]] = []
        # Readings carry "at" (epoch seconds), so a phase's peak can be picked out.
        self.memory: dict[str, list[dict[str, float]]] = {name: [] for name in pipeline.pids()}
        self.sampled_rooms: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def lag_between(self, since: float, until: float, which: int = 1) -> list[tuple[float, int | None]]:
        """``(seconds since ``since``, lag)`` samples taken in an epoch-seconds range (1: worker, 2: sink)."""
        return [(sample[0] - since, sample[1] if which == 1 else sample[2]) for sample in self.lags
                if since <= sample[0] <= until]

    def keep_ratios_between(self, since: float, until: float) -> dict[str, float]:
        """The smallest keep ratio the collector showed for each room it sampled in an epoch-seconds range."""
        out: dict[str, float] = {}
        for at, rooms in self.sampled_rooms:
            if since <= at <= until:
                for room, keep in rooms.items():
                    out[room] = min(keep, out.get(room, 1.0))
        return out

    def _sampled_rooms(self) -> dict[str, float]:
        from outagewatch.pipeline.running import fetch_metrics

        prefix = 'outagewatch_collector_storm_keep_ratio{room="'
        return {name[len(prefix):-2]: value for name, value in fetch_metrics(self.pipeline.collector.url).items()
                if name.startswith(prefix)}

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for name, pid in self.pipeline.pids().items():
                reading = memory_mib(pid)
                if reading:
                    self.memory[name].append({**reading, "at": time.time()})
            try:
                self.lags.append((time.time(), self.pipeline.worker_lag(), self.pipeline.sink_lag()))
                self.sampled_rooms.append((time.time(), self._sampled_rooms()))
            except Exception as exc:  # noqa: BLE001 - a missed sample is not a failed bench
                log.warning("bench sampler: %s", exc)


class BenchRun:
    def __init__(self, settings: Settings, name: str, quick: bool, database: str | None = None,
                 watched_rooms: tuple[str, ...] = (), run_dir: Path | None = None) -> None:
        self.base_settings = settings
        self.name = name
        self.quick = quick
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"{name}-{self.run_id}-"
        self.own_database = database is None
        self.database = database or f"outagewatch_bench_{self.run_id}"
        self.watched_rooms = watched_rooms
        self.run_dir = run_dir or settings.stack.data_dir / "bench" / f"{name}-{self.run_id}"
        self.pipeline: Any = None
        self.follower: Follower | None = None
        self.sampler: Sampler | None = None
        self.receiver: Any = None
        self.topics: list[str] = []
        self.stack_pids: dict[str, int] = {}

    def __enter__(self) -> BenchRun:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()

    def _start(self) -> None:
        from core.kafka_admin import ensure_topics
        from history.api import migrate
        from outagewatch.demo.orchestra import child_env
        from outagewatch.demo.receiver import WebhookReceiver
        from outagewatch.pipeline.isolation import isolated
        from outagewatch.pipeline.running import Pipeline

        self.settings, env = isolated(self.base_settings, self.run_id, self.database)
        self.stack_pids = stack_pids(self.settings)
        self.topics = list(self.settings.topics.all())
        ensure_topics(self.settings.kafka.bootstrap, dict.fromkeys(self.topics, self.settings.kafka.partitions),
                      self.settings.kafka.replication_factor)
        migrate(self.settings)
        self.receiver = WebhookReceiver(self.run_dir / "alerts-received.ndjson").start()
        child = child_env(self.settings, self.receiver.url)
        child.update(env)
        child.update(COLLECTOR_ENV)
        log.info("bench %s run %s: topics *-%s, database %s, logs in %s", self.name, self.run_id, self.run_id,
                 self.database, self.run_dir)
        self.pipeline = Pipeline(self.settings, self.run_dir, child)
        self.pipeline.start()
        self.follower = Follower(self.settings, set(self.watched_rooms)).start()
        self.sampler = Sampler(self.pipeline).start()

    def _stop(self) -> None:
        for part in (self.sampler, self.follower):
            if part is not None:
                part.stop()
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self.topics:
            from kafka.admin import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.base_settings.kafka.bootstrap)
            try:
                admin.delete_topics(self.topics)
            except Exception as exc:  # noqa: BLE001 - cleanup only
                log.warning("could not delete the bench topics: %s", exc)
            finally:
                admin.close()
        if self.own_database:
            from history.client import connect, parse_url

            admin = connect(parse_url(self.base_settings.clickhouse.url).with_database("default"))
            try:
                admin.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
            finally:
                admin.disconnect()

    def memory_between(self, since: float, until: float) -> dict[str, float | None]:
        """Largest resident MiB each process was seen at in an epoch-seconds range."""
        assert self.sampler is not None
        return {name: max((r["rss_mib"] for r in readings if since <= r["at"] <= until), default=None)
                for name, readings in self.sampler.memory.items()}

    def detection(self, room: str, onset_event_ms: int, onset_wall_ms: int, min_clients: float) -> dict[str, Any]:
        """When the pipeline saw an onset: its first window with the spike, and the first firing alert."""
        assert self.follower is not None
        out: dict[str, Any] = {"room": room, "onset_event_ms": onset_event_ms}
        window = self.follower.first_window(room, onset_event_ms, ONSET_CODE, min_clients)
        out["window_published"] = window is not None
        if window is not None:
            arrived, health = window
            out["window_event_latency_s"] = round((health.window_end - onset_event_ms) / 1000, 2)
            out["window_wall_latency_s"] = round((arrived - onset_wall_ms) / 1000, 2)
        fired = self.follower.first_firing(room, onset_event_ms)
        out["alert_fired"] = fired is not None
        if fired is not None:
            arrived, alert = fired
            out.update(alert_kind=alert.kind, alert_scope=alert.scope, alert_severity=alert.severity,
                       event_latency_s=round((alert.event_ts - onset_event_ms) / 1000, 2),
                       wall_latency_s=round((arrived - onset_wall_ms) / 1000, 2))
        else:
            out.update(event_latency_s=None, wall_latency_s=None)
        out["webhook_notifications_about_room"] = sum(room in json.dumps(body) for body in self.receiver.received)
        return out

    def wait_for_alerts(self, rooms_onsets: list[tuple[str, int]], timeout_s: float) -> float:
        """Wait until each (room, onset event ms) has a firing alert, or the timeout; returns the seconds waited."""
        assert self.follower is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if all(self.follower.first_firing(room, at) for room, at in rooms_onsets):
                break
            self.pipeline.check()
            time.sleep(0.5)
        return round(time.monotonic() - started, 2)

    def plan(self, **fields: Any) -> LoadPlan:
        return LoadPlan(url=self.pipeline.collector.url, api_key=self.pipeline.fleet_secret, prefix=self.prefix,
                        window_s=self.settings.streams.window_seconds, watched_rooms=self.watched_rooms, **fields)

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds so far of our processes, the broker and ClickHouse (those whose pid is visible)."""
        return {name: cpu_seconds(pid) for name, pid in {**self.pipeline.pids(), **self.stack_pids}.items()}

    def load(self, plan: LoadPlan, split: bool = False) -> dict[str, Any]:
        """Run the load in a child process (``split``: the background and the surges in one each); returns its
        summary plus the processes' CPU use during it."""
        self.pipeline.check()
        before, started = self.cpu(), time.time()
        with multiprocessing.get_context("spawn").Pool(2 if split else 1) as pool:
            if split:
                parts = [pool.apply_async(run_plan, (plan, part)) for part in ("background", "surges")]
                result: dict[str, Any] = merge_parts(*(part.get() for part in parts))
            else:
                result = pool.apply(run_plan, (plan,))
        elapsed = time.time() - started
        after = self.cpu()
        result["cpu_cores_used"] = {name: _cores(before[name], after[name], elapsed) for name in after}
        result["wall_range"] = (started, started + elapsed)
        self.pipeline.check()
        return result

    def drain(self, plan: LoadPlan, event_end_ms: int, timeout_s: float) -> dict[str, Any]:
        """Wait until ClickHouse holds every acknowledged report not sampled out; the account and how long it took."""
        started = time.monotonic()
        while True:
            counts = self.pipeline.collector_counts()
            stored = self.pipeline.stored(self.prefix, plan.event_start_ms, event_end_ms)
            account = loss_account(counts.accepted, counts.sampled_out, stored.rows, stored.weight)
            worker_lag = self.pipeline.worker_lag()
            if (account["stored_rows"] >= account["expected_rows"] and worker_lag == 0) or \
                    time.monotonic() - started > timeout_s:
                break
            self.pipeline.check()
            time.sleep(0.5)
        account["drained"] = account["stored_rows"] >= account["expected_rows"] and worker_lag == 0
        account["drain_seconds"] = round(time.monotonic() - started, 2)
        account["drain_timeout_s"] = timeout_s
        account["collector_shed_503"] = counts.shed
        account["worker_lag_at_end"] = worker_lag
        return account
