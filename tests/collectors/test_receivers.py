"""The OTLP/HTTP and remote-write receivers over real HTTP, with real peers: the OpenTelemetry SDK's exporter
and Prometheus remote-writing node-exporter's metrics, into Kafka, ClickHouse ``server_metrics`` (the real sink)
and the service windows the detectors read."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cramjam
import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from collectors.wire import Status, WriteRequest
from core import schemas
from core.config import Settings, TopicSettings
from history.client import ClickHouseTarget, connect
from streams.replay import service_windows
from tests.collectors.helpers import KEY, collector_settings, read_topic, running_collector
from tests.collectors.test_scraper import node_exporter  # noqa: F401 - fixture
from tests.deploy.peers import prometheus
from tests.history.history_testkit import SinkThread, fresh_topics, settings_for, sink_factory, wait_for  # noqa: F401

PROTOBUF = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-protobuf"}
REMOTE_WRITE = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-protobuf",
                "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _export(values: list[float], service: str = "audio-edge") -> bytes:
    now_ns = time.time_ns()
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="service.name").value.string_value = service
    resource.resource.attributes.add(key="host.name").value.string_value = "edge-1"
    points = resource.scope_metrics.add().metrics.add(name="queue.depth").gauge.data_points
    for value in values:
        points.add(as_double=value, time_unix_nano=now_ns)
    return bytes(request.SerializeToString())


def _write(samples: list[tuple[str, float]]) -> bytes:
    request = WriteRequest()
    now_ms = time.time_ns() // 1_000_000
    for name, value in samples:
        series = request.timeseries.add()
        for label, text in (("__name__", name), ("job", "auth"), ("instance", "a1:9100")):
            series.labels.add(name=label, value=text)
        series.samples.add(value=value, timestamp=now_ms)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


@pytest.fixture
def topics(fresh_topics: TopicSettings) -> TopicSettings:  # noqa: F811 - the fixture imported above
    return fresh_topics


@pytest.mark.integration
def test_otlp_and_remote_write_answer_in_their_protocols_terms(settings: Settings, topics: TopicSettings,
                                                               kafka_bootstrap: str) -> None:
    config = collector_settings(settings, topics.client_reports, topics.server_metrics, max_body_bytes=64 * 1024,
                                api_keys=(f"tests:{KEY}:metrics", "app:app-secret:reports"))
    with running_collector(config) as runner:
        otlp_url = runner.otlp_url + "/v1/metrics"
        accepted = requests.post(otlp_url, data=gzip.compress(_export([3.0, float("nan"), 4.0])),
                                 headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
        assert accepted.status_code == 200 and accepted.headers["Content-Type"] == "application/x-protobuf"
        partial = ExportMetricsServiceResponse.FromString(accepted.content).partial_success
        assert partial.rejected_data_points == 1
        assert "data point 1: metric 'queue.depth': value nan is not a finite number" in partial.error_message

        as_json = requests.post(otlp_url, timeout=10, headers={**PROTOBUF, "Content-Type": "application/json"},
                                data=json.dumps({"resourceMetrics": []}))
        assert as_json.status_code == 200 and as_json.json() == {}

        def status(response: requests.Response) -> tuple[int, int, str]:
            answer = Status.FromString(response.content)
            return response.status_code, answer.code, answer.message

        unauthenticated = status(requests.post(otlp_url, data=_export([1.0]), timeout=10,
                                               headers={"Content-Type": "application/x-protobuf"}))
        assert unauthenticated[:2] == (401, 16) and "Authorization: Bearer" in unauthenticated[2]
        wrong_scope = status(requests.post(otlp_url, data=_export([1.0]), timeout=10,
                                           headers={**PROTOBUF, "Authorization": "Bearer app-secret"}))
        assert wrong_scope[:2] == (403, 7) and "metrics scope" in wrong_scope[2]
        undecodable = status(requests.post(otlp_url, data=b"\xff\xff\xff\xff", headers=PROTOBUF, timeout=10))
        assert undecodable[:2] == (400, 3) and "not an OTLP ExportMetricsServiceRequest" in undecodable[2]
        too_large = requests.post(otlp_url, data=b"\x00" * 70_000, headers=PROTOBUF, timeout=10)
        assert too_large.status_code == 413 and "at most 65536" in Status.FromString(too_large.content).message
        bomb = requests.post(otlp_url, data=gzip.compress(b"\x00" * 1_000_000), timeout=10,
                             headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert bomb.status_code == 413
        unsupported = requests.post(otlp_url, data=b"x", headers={**PROTOBUF, "Content-Type": "text/plain"}, timeout=10)
        assert unsupported.status_code == 415 and "x-protobuf" in json.loads(unsupported.content)["message"]

        write_url = runner.url + "/api/v1/write"
        written = requests.post(write_url, data=_write([("node_load1", 0.5)]), headers=REMOTE_WRITE, timeout=10)
        assert written.status_code == 204, written.text
        half = requests.post(write_url, data=_write([("ok", 1.0), ("bad", float("inf"))]), headers=REMOTE_WRITE,
                             timeout=10)
        assert half.status_code == 400
        assert half.text == "accepted 1 samples, refused 1: sample 1: series 'bad': value inf is not a finite number"
        not_snappy = requests.post(write_url, data=b"\x10garbage!", headers=REMOTE_WRITE, timeout=10)
        assert not_snappy.status_code == 400 and "not valid snappy" in not_snappy.json()["error"]
        v2 = requests.post(write_url, data=_write([("x", 1.0)]), timeout=10,
                           headers={**REMOTE_WRITE, "X-Prometheus-Remote-Write-Version": "2.0.0"})
        assert v2.status_code == 415
        metrics = requests.get(runner.url + "/metrics", timeout=5).text

        batches = read_topic(kafka_bootstrap, topics.server_metrics, 4, kind=schemas.MetricBatch)
    samples = sorted((s.service, s.host, s.name, s.value) for _, batch in batches for s in batch.samples)
    assert samples == [("audio-edge", "edge-1", "queue.depth", 3.0), ("audio-edge", "edge-1", "queue.depth", 4.0),
                       ("auth", "a1:9100", "node_load1", 0.5), ("auth", "a1:9100", "ok", 1.0)]
    assert 'outagewatch_collector_accepted_total{kind="otlp"} 2.0' in metrics
    assert 'outagewatch_collector_rejected_total{kind="remote_write",reason="invalid_other"} 1.0' in metrics
    assert 'outagewatch_collector_requests_total{path="otlp:/v1/metrics",status="401"} 1.0' in metrics
    assert 'outagewatch_collector_requests_total{path="/api/v1/write",status="204"} 1.0' in metrics


def _rows(target: ClickHouseTarget, service: str) -> list[schemas.MetricSample]:
    client = connect(target)
    try:
        rows = client.execute("SELECT ts_ms, service, cluster, host, name, value FROM server_metrics FINAL "
                              "WHERE service = %(s)s ORDER BY ts_ms, name", {"s": service})
    except Exception:  # noqa: BLE001 - the table exists once the sink migrated
        return []
    finally:
        client.disconnect()
    return [schemas.MetricSample(ts=ts, service=s, cluster=c, host=h, name=n, value=v) for ts, s, c, h, n, v in rows]


@pytest.mark.integration
def test_the_opentelemetry_sdk_exports_into_server_metrics_and_the_service_windows(
        settings: Settings, topics: TopicSettings, clickhouse_db: ClickHouseTarget,
        sink_factory: Callable[[Settings, str], SinkThread]) -> None:  # noqa: F811
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    sink = sink_factory(settings_for(settings, clickhouse_db, topics), f"test-otlp-{uuid.uuid4().hex[:8]}")
    depth = [3.0]

    def observe(_options: CallbackOptions) -> Iterator[Observation]:
        yield Observation(depth[0], {"queue": "joins"})

    with running_collector(collector_settings(settings, topics.client_reports, topics.server_metrics)) as runner:
        exporter = OTLPMetricExporter(endpoint=runner.otlp_url + "/v1/metrics", compression=Compression.Gzip,
                                      headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        resource = Resource.create({"service.name": "otel-edge", "host.name": "edge-7", "cloud.region": "eu-1"})
        provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = provider.get_meter("outagewatch-tests")
        meter.create_observable_gauge("queue.depth", callbacks=[observe])
        requests_counter = meter.create_counter("requests")
        latency = meter.create_histogram("latency_ms")
        try:
            for value, count in ((3.0, 5), (40.0, 7)):
                depth[0] = value
                requests_counter.add(count, {"code": "200"})
                latency.record(value * 10)
                assert provider.force_flush(10_000)
                time.sleep(1.2)  # the next export in the next 1 s window
        finally:
            provider.shutdown()
        metrics = requests.get(runner.url + "/metrics", timeout=5).text
    assert re.search(r'requests_total\{path="otlp:/v1/metrics",status="200"\} [23]\.0', metrics), metrics

    wait_for(lambda: len(_rows(clickhouse_db, "otel-edge")) >= 8, 180, "the SDK's points in server_metrics",
             seen=lambda: _rows(clickhouse_db, "otel-edge"))
    sink.join()
    rows = _rows(clickhouse_db, "otel-edge")
    assert {(s.host, s.cluster) for s in rows} == {("edge-7", "eu-1")}
    by_name: dict[str, list[float]] = {}
    for sample in rows:
        by_name.setdefault(sample.name, []).append(sample.value)
    # Two exports, and shutdown's own final one when it lands in time: cumulative, so the last values again.
    expected = {"queue.depth": [3.0, 40.0], "requests": [5.0, 12.0], "latency_ms_count": [1.0, 2.0],
                "latency_ms_sum": [30.0, 430.0]}
    assert set(by_name) == set(expected), by_name
    for name, values in by_name.items():
        assert values[:2] == expected[name] and set(values[2:]) <= {expected[name][-1]}, by_name
    # The service pipeline's reducer, as the worker runs it: the window the detectors read moves with the gauge.
    windows = [w for w in service_windows(rows, window_s=1, lateness_s=1) if w.scope == "service"]
    assert {(w.key, w.hosts) for w in windows} == {("otel-edge", 1)}
    depth = [w.metrics["queue.depth"] for w in windows]
    assert depth[:2] == [3.0, 40.0] and set(depth[2:]) <= {40.0}, depth


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  external_labels:
    region: eu-1
scrape_configs:
  - job_name: audio-edge
    static_configs:
      - targets: ['{target}']
remote_write:
  - url: {url}/api/v1/write
    authorization:
      credentials: {key}
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
"""


@pytest.mark.integration
def test_prometheus_remote_writes_node_exporter_into_server_metrics_and_the_service_windows(
        settings: Settings, topics: TopicSettings, clickhouse_db: ClickHouseTarget, tmp_path: Path,
        sink_factory: Callable[[Settings, str], SinkThread], node_exporter: str) -> None:  # noqa: F811
    sink = sink_factory(settings_for(settings, clickhouse_db, topics), f"test-rw-{uuid.uuid4().hex[:8]}")
    target = node_exporter.split("/")[2]
    with running_collector(collector_settings(settings, topics.client_reports, topics.server_metrics)) as runner:
        config = PROMETHEUS_CONFIG.format(target=target, url=runner.url, key=KEY)
        with prometheus(tmp_path / "prometheus", config):

            def landed() -> bool:
                cpu = {s.ts for s in _rows(clickhouse_db, "audio-edge") if s.name == "node_cpu_seconds_total"}
                return len(cpu) >= 3  # three scrapes

            wait_for(landed, 180, "node-exporter's samples remote-written into server_metrics", interval=1.0)
        metrics = requests.get(runner.url + "/metrics", timeout=5).text
    sink.join()
    rows = _rows(clickhouse_db, "audio-edge")
    assert {(s.host, s.cluster) for s in rows} == {(target, "eu-1")}
    names = {s.name for s in rows}
    assert {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "up", "scrape_duration_seconds"} <= names
    assert 'outagewatch_collector_requests_total{path="/api/v1/write",status="204"}' in metrics
    assert 'path="/api/v1/write",status="400"' not in metrics
    windows = [w for w in service_windows(rows, window_s=1, lateness_s=1) if w.scope == "service"]
    scraped = [w.metrics["node_cpu_seconds_total"] for w in windows if "node_cpu_seconds_total" in w.metrics]
    # A counter of CPU time: each window the detectors read holds a larger mean than the one before.
    assert len(scraped) >= 3 and scraped == sorted(scraped) and scraped[-1] > scraped[0]
    assert all(w.metrics.get("up") == 1.0 for w in windows if "up" in w.metrics)
