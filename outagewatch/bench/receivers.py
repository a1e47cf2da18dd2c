"""Benchmark: CPU per data point of the OTLP/HTTP and remote-write receivers, beside our own JSON ``/v1/metrics``.

Two figures per format, on the same 1,000-point bodies (3 labels a point):

- ``decode_us_per_point``: the pure decode + map + bounds (``collectors.otlp``,
  ``collectors.remote_write``, ``collectors.bodies``), best of several rounds
  of this process's CPU time;
- ``http_cpu_us_per_point``: the collector's whole request path (aiohttp,
  auth, rate, decode, records encoded for Kafka) in this process, CPU time
  over the run, with the HTTP client in a child process so its CPU is not
  counted and a sink that only counts records (Kafka's own cost is in
  ``bench ingest``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import cramjam
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from collectors import bodies, otlp, remote_write
from collectors.series import SeriesLimits
from collectors.server import start
from collectors.sink import Record
from collectors.wire import WriteRequest
from core import schemas
from core.config import Settings

KEY = "bench-receivers"
POINTS = 1000


def _labels(index: int) -> dict[str, str]:
    return {"core": str(index % 16), "mode": ("idle", "user", "system")[index % 3], "disk": f"sd{index % 4}"}


def bodies_of(points: int, now_ms: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Each format's body of ``points`` points and the headers it is sent with."""
    export = ExportMetricsServiceRequest()
    resource_metrics = export.resource_metrics.add()
    resource_metrics.resource.attributes.add(key="service.name").value.string_value = "audio-edge"
    resource_metrics.resource.attributes.add(key="host.name").value.string_value = "edge-1"
    data_points = resource_metrics.scope_metrics.add().metrics.add(name="node.cpu.time").gauge.data_points
    write = WriteRequest()
    samples = []
    for index in range(points):
        point = data_points.add(as_double=index / 10, time_unix_nano=now_ms * 1_000_000)
        for key, value in _labels(index).items():
            point.attributes.add(key=key).value.string_value = value
        series = write.timeseries.add()
        for name, value in {"__name__": "node_cpu_seconds_total", "job": "audio-edge", "instance": "edge-1",
                            **_labels(index)}.items():
            series.labels.add(name=name, value=value)
        series.samples.add(value=index / 10, timestamp=now_ms)
        samples.append({"ts": now_ms, "service": "audio-edge", "host": "edge-1", "name": "node_cpu_seconds_total",
                        "value": index / 10, "labels": _labels(index)})
    auth = {"Authorization": f"Bearer {KEY}"}
    return {
        "otlp-protobuf": (export.SerializeToString(), {**auth, "Content-Type": otlp.PROTOBUF}),
        "otlp-json": (json_format.MessageToJson(export, indent=None).encode(), {**auth, "Content-Type": otlp.JSON}),
        "remote-write": (bytes(cramjam.snappy.compress_raw(write.SerializeToString())),
                         {**auth, "Content-Type": remote_write.PROTOBUF, "Content-Encoding": "snappy",
                          remote_write.VERSION_HEADER: "0.1.0"}),
        "json-v1-metrics": (schemas.encode({"samples": samples}), {**auth, "Content-Type": "application/json"}),
    }


def _decoders(settings: Settings, now_ms: int) -> dict[str, Callable[[bytes], int]]:
    bound, limits = settings.event_time.bound(), SeriesLimits.from_settings(settings.collector)
    return {
        "otlp-protobuf": lambda body: len(otlp.decode(body, otlp.PROTOBUF, 1 << 20, now_ms, bound, limits)[0]),
        "otlp-json": lambda body: len(otlp.decode(body, otlp.JSON, 1 << 20, now_ms, bound, limits)[0]),
        "remote-write": lambda body: len(remote_write.decode(body, 1 << 24, 1 << 20, now_ms, bound, limits)[0]),
        "json-v1-metrics": lambda body: len(bodies.decode_samples(body, "application/json", 1 << 20)[0]),
    }


def decode_us_per_point(decode: Callable[[bytes], int], body: bytes, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        count = decode(body)
        best = min(best, (time.process_time() - started) / max(1, count))
    return best * 1e6


class CountingSink:
    """A ``RecordSink`` that takes every record at once: the collector's own CPU, without Kafka's."""

    pending_bytes = 0

    def __init__(self) -> None:
        self.records = 0

    async def send_all(self, records: Sequence[Record]) -> None:
        self.records += len(records)

    async def ready(self) -> bool:
        return True

    def partitions(self, topic: str) -> int:
        return 1


def _post_many(url: str, body: bytes, headers: dict[str, str], requests_count: int) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    for _ in range(requests_count):
        connection.request("POST", parts.path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 202, 204):
            raise RuntimeError(f"{url} answered {answer.status}")
    connection.close()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def http_cpu_us_per_point(settings: Settings, formats: dict[str, tuple[bytes, dict[str, str]]],
                          requests_count: int) -> dict[str, float]:
    collector = dataclasses.replace(settings.collector, api_keys=(f"bench:{KEY}:metrics",), host="127.0.0.1",
                                    rate_per_second=1e12, rate_burst=1e12, max_body_bytes=16 * 1024 * 1024,
                                    max_batch_items=1 << 20)
    config = dataclasses.replace(settings, collector=collector)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(start(config, port=0, otlp_port=0, sink=CountingSink()), loop).result(30)
    paths = {"otlp-protobuf": runner.otlp_url + "/v1/metrics", "otlp-json": runner.otlp_url + "/v1/metrics",
             "remote-write": runner.url + "/api/v1/write", "json-v1-metrics": runner.url + "/v1/metrics"}
    spawn = multiprocessing.get_context("spawn")
    figures: dict[str, float] = {}
    try:
        for name, (body, headers) in formats.items():
            _post_many(paths[name], body, headers, 2)  # warm: imports, first-request paths
            client = spawn.Process(target=_post_many, args=(paths[name], body, headers, requests_count))
            before = _cpu_seconds()
            client.start()
            client.join()
            used = _cpu_seconds() - before
            if client.exitcode != 0:
                raise RuntimeError(f"the {name} client failed (exit {client.exitcode})")
            figures[name] = round(used / (requests_count * POINTS) * 1e6, 3)
    finally:
        asyncio.run_coroutine_threadsafe(runner.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    return figures


def run(settings: Settings, quick: bool = False, **_: Any) -> list[dict[str, Any]]:
    now_ms = time.time_ns() // 1_000_000
    formats = bodies_of(POINTS, now_ms)
    decoders = _decoders(settings, now_ms)
    rounds, requests_count = (5, 50) if quick else (20, 400)
    decode = {name: round(decode_us_per_point(decoders[name], body, rounds), 3) for name, (body, _) in formats.items()}
    over_http = http_cpu_us_per_point(settings, formats, requests_count)
    baseline = over_http["json-v1-metrics"]
    return [{"benchmark": "receivers", "quick": quick, "cpus": os.cpu_count(), "format": name,
             "points_per_request": POINTS, "body_bytes": len(formats[name][0]),
             "body_bytes_gzip": len(gzip.compress(formats[name][0])), "decode_us_per_point": decode[name],
             "http_cpu_us_per_point": over_http[name], "http_requests": requests_count,
             "http_vs_json_v1_metrics": round(over_http[name] / baseline, 2) if baseline else None,
             "http_cpu_of": "the collector process only: client in a child process, a sink that counts records (no Kafka)"}
            for name in formats]
