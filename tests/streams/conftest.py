"""Helpers for the worker tests: generated reports, a worker subprocess, reading topics."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core import schemas
from core.schemas import ClientReport
from outagewatch.stack.process import free_port

WINDOW_S = 2
LATENESS_S = 1


def generate_reports(rooms: int, per_room: int, start_ms: int, span_ms: int, seed: int = 1) -> list[ClientReport]:
    """Reports in event-time order: heartbeats, joins, errors (some spam from one client), latencies."""
    rng = random.Random(seed)
    out = []
    for index in range(rooms * per_room):
        room = f"room-{index % rooms}"
        ts = start_ms + (index * span_ms) // (rooms * per_room)
        roll = rng.random()
        kind = "error" if roll < 0.15 else "join" if roll < 0.25 else "leave" if roll < 0.3 else "heartbeat"
        out.append(ClientReport(
            report_id=f"r{index}", ts=ts, client_id=f"c{rng.randrange(40)}", room_id=room, kind=kind,
            platform=rng.choice(schemas.PLATFORMS), region=rng.choice(["eu", "us"]), app_version="5.1",
            error_code=rng.choice(["crash", "details_not_available"]) if kind == "error" else None,
            latency_ms=rng.random() * 100 if rng.random() < 0.5 else None,
            weight=2.0 if kind == "heartbeat" and rng.random() < 0.1 else 1.0))
    return out


def produce_batches(bootstrap: str, topic: str, reports: list[ClientReport], per_batch: int = 20,
                    producer: Any = None) -> None:
    """As the collector does: one request's reports (a short span of event time) grouped by room.

    Requests must stay short in event time: the watermark is per partition, so a
    message spanning seconds would make other rooms' reports in its partition late.
    ``producer``: a ``KafkaProducer`` to reuse (flushed, not closed), for input paced
    in wall time: a new one probes the broker first, which on a busy machine took
    long enough for the worker to take its partition for idle (``--idle-seconds 1``)
    and close the window the next chunk belongs to.
    """
    from kafka import KafkaProducer

    owned = producer is None
    if owned:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for offset in range(0, len(reports), per_batch):
        chunk = reports[offset:offset + per_batch]
        by_room: dict[str, list[ClientReport]] = {}
        for report in chunk:
            by_room.setdefault(report.room_id, []).append(report)
        for room, items in by_room.items():
            producer.send(topic, key=room.encode(), value=schemas.encode(schemas.ReportBatch(reports=items)))
    producer.flush()
    if owned:
        producer.close()


def read_topic(bootstrap: str, topic: str, until: Callable[[list[Any]], bool], timeout_s: float,
               decode: Callable[[bytes], Any], alive: Callable[[], bool] = lambda: True) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=500)
    values: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                if not schemas.is_event_time_mark(message.value):  # the detectors' clock on health topics
                    values.append(decode(message.value))
            if until(values) or not alive():
                break
    finally:
        consumer.close()
    return values


@dataclass
class WorkerTopics:
    env: dict[str, str]
    reports: str
    metrics: str
    room_health: str
    service_health: str
    dead_letter: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path = Path(".")

    def start(self, name: str = "w1") -> subprocess.Popen[bytes]:
        log = open(  # noqa: SIM115 - the worker subprocess writes to it until it exits
            self.log_dir / f"{name}-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "outagewatch", "-v", "worker", "--web-port", str(free_port()), "--idle-seconds", "1",
             "--batch-max", "500"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes if process.returncode is None)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.log_dir.glob("*.log")))


@pytest.fixture
def worker_topics(topic_factory: Callable[..., str], tmp_path: Path, kafka_bootstrap: str) -> Iterator[WorkerTopics]:
    names = {
        "client_reports": topic_factory("reports", 4), "server_metrics": topic_factory("metrics", 4),
        "room_health": topic_factory("room-health", 2), "service_health": topic_factory("service-health", 2),
        "dead_letter": topic_factory("dead-letter", 1),
        # The worker also detects and alerts: keep its output off the shared topics.
        "alerts": topic_factory("alerts", 1), "anomaly_scores": topic_factory("anomaly-scores", 1),
    }
    env = dict(os.environ)
    env.update({f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in names.items()})
    env.update({
        "OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "OUTAGEWATCH_STREAMS_APP_ID": f"test-streams-{uuid.uuid4().hex[:8]}",
        "OUTAGEWATCH_STREAMS_WINDOW_SECONDS": str(WINDOW_S),
        "OUTAGEWATCH_STREAMS_ALLOWED_LATENESS_SECONDS": str(LATENESS_S),
        "OUTAGEWATCH_STACK_DATA_DIR": str(tmp_path / "data"),
    })
    worker = WorkerTopics(env=env, reports=names["client_reports"], metrics=names["server_metrics"],
                          room_health=names["room_health"], service_health=names["service_health"],
                          dead_letter=names["dead_letter"], log_dir=tmp_path)
    yield worker
    for process in worker.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
