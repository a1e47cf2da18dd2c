"""Shared by the collector tests: a collector in a background thread, reading topics back."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from collectors.server import CollectorRunner, start
from core import codec, schemas
from core.config import Settings

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}
# The start of the current hour: inside the collector's event-time bound (event_time.*), on a whole second.
BASE_TS = time.time_ns() // 1_000_000 // 3_600_000 * 3_600_000


def collector_settings(settings: Settings, reports_topic: str, metrics_topic: str | None = None,
                       bootstrap: str | None = None, **collector: Any) -> Settings:
    topics = dataclasses.replace(settings.topics, client_reports=reports_topic,
                                 server_metrics=metrics_topic or reports_topic)
    kafka = dataclasses.replace(settings.kafka, bootstrap=bootstrap or settings.kafka.bootstrap)
    # otlp_port 0: tests run side by side, and OTLP's 4318 is one port.
    section = dataclasses.replace(settings.collector, **{"api_keys": (f"tests:{KEY}",), "otlp_port": 0, **collector})
    return dataclasses.replace(settings, topics=topics, kafka=kafka, collector=section)


@contextmanager
def running_collector(settings: Settings) -> Iterator[CollectorRunner]:
    """The real collector (aiohttp + kafka-python) on a free port, its event loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(start(settings, port=0), loop).result(60)
    try:
        yield runner
    finally:
        asyncio.run_coroutine_threadsafe(runner.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def report(index: int, room: str = "room-1", kind: str = "heartbeat", prefix: str = "r", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"report_id": f"{prefix}{index}", "ts": BASE_TS + index, "client_id": f"c{index}",
                            "room_id": room, "kind": kind, "platform": "android"}
    if kind == "error":
        item["error_code"] = extra.pop("error_code", "crash")
    item.update(extra)
    return item


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}-"


def read_topic(bootstrap: str, topic: str, expected_items: int, timeout_s: float = 20.0,
               kind: type = schemas.ReportBatch) -> list[tuple[bytes, Any]]:
    """(key, decoded batch) of every message, until ``expected_items`` items were read or time is up."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=int(timeout_s * 1000),
                             group_id=f"test-{uuid.uuid4().hex[:8]}")
    out: list[tuple[bytes, Any]] = []
    items = 0
    try:
        for message in consumer:
            # Reports as the worker reads them (the collector packs them: core.codec); samples are JSON.
            batch = (schemas.ReportBatch(codec.decode_value(message.value)[0]) if kind is schemas.ReportBatch
                     else schemas.decode(message.value, kind))
            out.append((message.key, batch))
            items += len(batch.reports if kind is schemas.ReportBatch else batch.samples)
            if items >= expected_items:
                break
    finally:
        consumer.close()
    return out


def post_from(url: str, reports: list[Any], source_address: str = "127.0.0.1", key: str = KEY,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST reports from a chosen loopback address (each 127.X.Y.Z/24 is a network of its own): the status,
    the JSON answer and the headers."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source_address, 0))
    try:
        connection.request("POST", "/v1/reports", body=schemas.encode({"reports": reports}),
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                                    **(headers or {})})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read()), dict(answer.getheaders())
    finally:
        connection.close()


def collect_beside_a_taken_port(kafka_bootstrap: str,
                                args: Callable[[int], list[str]]) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``outagewatch collect <args(port)>`` while another program listens on ``port``; it must stop by itself."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-m", "outagewatch", "collect", *args(port)], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap})
    return port, result
