"""The worker's own metrics in Prometheus text format (``/metrics`` on its web port).

Read at scrape time from the counters the pipelines and the detection agents
already keep, so nothing is added to the hot path. The names are what the
rules in ``deploy/prometheus/`` use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.health import Health


class WorkerCollector(Collector):
    """One scrape's families from a running worker (``WorkerHealth`` provides the readings)."""

    def __init__(self, reading: Callable[[], dict[str, Any]], health: Health) -> None:
        self.reading = reading
        self.health = health

    def collect(self) -> Iterator[Metric]:
        now = self.reading()
        pipelines: dict[str, dict[str, float]] = now["pipelines"]
        for name, help_text, key in (
                ("outagewatch_worker_messages", "Kafka messages folded into windows", "messages"),
                ("outagewatch_worker_items", "reports (room) and samples (service) folded into windows", "items"),
                ("outagewatch_worker_windows_closed", "windows closed and published", "windows_out"),
                ("outagewatch_worker_dead_letters", "input messages sent to the dead-letter topic", "dead_letters")):
            family = CounterMetricFamily(name, help_text, labels=["pipeline"])
            for pipeline, counters in sorted(pipelines.items()):
                family.add_metric([pipeline], float(counters.get(key, 0)))
            yield family
        lag = GaugeMetricFamily("outagewatch_worker_lag_records",
                                "records of an assigned input partition not yet folded", labels=["topic", "partition"])
        for (topic, partition), records in sorted(now["lag"].items()):
            lag.add_metric([topic, str(partition)], float(records))
        yield lag
        assigned = GaugeMetricFamily("outagewatch_worker_assigned_partitions", "input partitions assigned",
                                     labels=["topic"])
        for topic, count in sorted(now["assigned"].items()):
            assigned.add_metric([topic], float(count))
        yield assigned
        wall_ms, event_ms = self.health.last_progress_ms()
        yield _seconds("outagewatch_worker_last_progress_timestamp_seconds",
                       "wall time of the last window closed or batch folded", wall_ms)
        yield _seconds("outagewatch_worker_last_window_end_timestamp_seconds",
                       "event time up to which windows are closed", event_ms)
        verdict = self.health.verdict()
        yield _flag("outagewatch_worker_live", "1 while live (core/health.py's rule)", verdict.live)
        yield _flag("outagewatch_worker_ready", "1 while ready", verdict.ready)
        yield _flag("outagewatch_worker_in_recovery", "1 while Faust recovers tables from changelogs",
                    now["in_recovery"])
        detection = now.get("detection")
        if detection is None:
            return
        for name, help_text, key in (
                ("outagewatch_detection_windows", "closed windows judged by the detectors", "windows"),
                ("outagewatch_detection_decisions", "detector decisions sent to the alert engine", "decisions"),
                ("outagewatch_detection_bad_windows", "windows with at least one bad decision", "bad_windows"),
                ("outagewatch_alerting_alerts", "alert events published (firing and resolved)", "alerts"),
                ("outagewatch_detection_dead_letters", "undecodable windows or decisions dead-lettered",
                 "dead_letters")):
            yield CounterMetricFamily(name, help_text, value=float(detection["counters"].get(key, 0)))
        yield _flag("outagewatch_alerting_engine_active", "1 on the worker that runs the alert engine",
                    detection["engine_active"])
        yield CounterMetricFamily("outagewatch_watchdog_sent", "Watchdog alerts accepted by Alertmanager",
                                  value=float(detection["watchdog_sent"]))
        yield _seconds("outagewatch_watchdog_last_sent_timestamp_seconds",
                       "when Alertmanager last accepted the Watchdog", detection["watchdog_last_ms"])


def _seconds(name: str, help_text: str, millis: float | None) -> GaugeMetricFamily:
    """A gauge in seconds from a value in milliseconds (NaN when unknown)."""
    return GaugeMetricFamily(name, help_text, value=float("nan") if millis is None else millis / 1000)


def _flag(name: str, help_text: str, on: object) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=1.0 if on else 0.0)


def registry(reading: Callable[[], dict[str, Any]], health: Health) -> CollectorRegistry:
    out = CollectorRegistry()
    out.register(WorkerCollector(reading, health))
    return out
