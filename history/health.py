"""The sink's ``/healthz`` (liveness), ``/readyz`` and ``/metrics`` on ``history.sink_health_port``.

A small ``http.server`` in a thread of its own: the sink's loop is
synchronous and may be blocked (a hung insert), which is exactly when the
endpoints must still answer. They read what the loop reported to its
``Health`` and its counters; nothing here touches Kafka or ClickHouse.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.health import Health

log = logging.getLogger("history.sink")


class SinkCollector(Collector):
    """The sink's metrics, read at scrape time from the running ``Sink`` (once it is built)."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self.sink: Any = None

    def collect(self) -> Iterator[Metric]:
        verdict = self.health.verdict()
        yield GaugeMetricFamily("outagewatch_sink_live", "1 while live (core/health.py's rule)", value=float(verdict.live))
        yield GaugeMetricFamily("outagewatch_sink_ready", "1 while ready", value=float(verdict.ready))
        wall_ms, event_ms = self.health.last_progress_ms()
        yield _seconds("outagewatch_sink_last_write_timestamp_seconds",
                       "wall time of the last batch ClickHouse acknowledged", wall_ms)
        yield _seconds("outagewatch_sink_last_report_timestamp_seconds",
                       "event time of the newest report in the last batch written", event_ms)
        sink = self.sink
        if sink is None:
            return
        metrics = sink.metrics
        rows = CounterMetricFamily("outagewatch_sink_rows_written", "rows ClickHouse acknowledged", labels=["table"])
        for table, count in sorted(dict(metrics.rows).items()):
            rows.add_metric([table], float(count))
        yield rows
        for name, help_text, value in (
                ("outagewatch_sink_retries", "failed ClickHouse writes retried", metrics.retries),
                ("outagewatch_sink_dead_letters", "messages or rows sent to the dead-letter topic", metrics.dead_letters),
                ("outagewatch_sink_skipped_windows", "re-published room-health windows not written again",
                 metrics.skipped_windows),
                ("outagewatch_sink_flushes", "batches written and committed", metrics.flushes)):
            yield CounterMetricFamily(name, help_text, value=float(value))
        yield GaugeMetricFamily("outagewatch_sink_paused", "1 while consumption is paused (ClickHouse writes fail)",
                                value=float(bool(sink.paused)))
        yield GaugeMetricFamily("outagewatch_sink_buffered_rows", "rows waiting in the current batch",
                                value=float(sink.batch.row_count))
        lag = GaugeMetricFamily("outagewatch_sink_lag_records", "messages of a topic not yet consumed (its "
                                "assigned partitions)", labels=["topic"])
        for topic, records in sorted((sink.lag or {}).items()):
            lag.add_metric([topic], float(records))
        yield lag
        assigned = GaugeMetricFamily("outagewatch_sink_assigned_partitions", "partitions assigned", labels=["topic"])
        for topic, count in sorted((sink.consumer.assigned or {}).items()):
            assigned.add_metric([topic], float(count))
        yield assigned


def _seconds(name: str, help_text: str, millis: int | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=float("nan") if millis is None else millis / 1000)


class SinkHealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` for one sink; ``attach(sink)`` once it is built."""

    def __init__(self, health: Health, port: int, host: str = "127.0.0.1") -> None:
        self.health = health
        self.collector = SinkCollector(health)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, content_type, body = server.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                return  # a scrape every few seconds is not news

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sink-health", daemon=True)

    def attach(self, sink: Any) -> None:
        self.collector.sink = sink

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path in ("/healthz", "/readyz"):
            snapshot = self.health.snapshot()
            good = snapshot["live"] if path == "/healthz" else snapshot["ready"]
            word = ("live" if good else "not live") if path == "/healthz" else ("ready" if good else "not ready")
            return 200 if good else 503, "application/json", json.dumps({"status": word, **snapshot}).encode()
        return 404, "application/json", b'{"error": "not found: try /healthz, /readyz or /metrics"}'

    def start(self) -> SinkHealthServer:
        self._thread.start()
        log.info("history sink: /healthz, /readyz and /metrics on http://127.0.0.1:%d", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
