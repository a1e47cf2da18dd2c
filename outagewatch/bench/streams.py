"""Benchmark: reports/s through `outagewatch worker`, Kafka in -> room-health out.

Pre-produces N reports (one message per room batch, as the collector sends
them) to fresh topics, starts 1 (or 2) worker subprocesses, and measures:

- ``reports_per_s``: N / the time between the worker group's first and last
  committed-offset progress on the input topic (startup excluded; ``None``
  when the input is too small to see two commits, e.g. ``--quick``);
- runs with 1 and then 2 workers (only 1 with ``--quick``);
- ``windows_out``: closed room windows seen on the fresh room-health topic;
- ``publish_lag_p95_s``: room-health record time minus the produce time of
  the last input message of that room (includes the time the input waited
  in Kafka while the worker caught up, so it is an upper bound here);
- ``worker_peak_rss_mb``: VmHWM of each worker process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

from outagewatch import schemas
from outagewatch.config import Settings
from outagewatch.stack.process import free_port


def _reports(count: int, rooms: int, start_ms: int, span_ms: int) -> list[schemas.ClientReport]:
    out = []
    for index in range(count):
        kind = "error" if index % 10 == 0 else "heartbeat"
        out.append(schemas.ClientReport(
            report_id=f"r{index}", ts=start_ms + index * span_ms // count, client_id=f"c{index % 50_000}",
            room_id=f"room-{index % rooms}", kind=kind, platform=schemas.PLATFORMS[index % 4],  # type: ignore[arg-type]
            error_code="crash" if kind == "error" else None, region="eu", app_version="5.1",
            latency_ms=float(index % 300)))
    return out


def run(settings: Settings, quick: bool = False, count: int = 1_000_000, rooms: int = 1000,
        workers: tuple[int, ...] | None = None) -> list[dict[str, Any]]:
    """One result per worker count: (1,) with ``quick``, else (1, 2)."""
    if quick:
        count, rooms = 20_000, 50
    return [_run_once(settings, count, rooms, n) for n in (workers or ((1,) if quick else (1, 2)))]


def _run_once(settings: Settings, count: int, rooms: int, workers: int) -> dict[str, Any]:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    from outagewatch.stack.kafka import ensure_topics

    bootstrap = settings.kafka.bootstrap
    suffix = uuid.uuid4().hex[:8]
    topics = {name: f"bench-{name.replace('_', '-')}-{suffix}" for name in settings.topics.__dataclass_fields__}
    partitions = settings.kafka.partitions
    ensure_topics(bootstrap, {topic: partitions for topic in topics.values()})
    now = int(time.time() * 1000)
    reports = _reports(count, rooms, now - 60_000, 50_000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    last_produce_ms: dict[str, int] = {}
    for offset in range(0, count, rooms * 20):
        chunk: dict[str, list[schemas.ClientReport]] = {}
        for report in reports[offset:offset + rooms * 20]:
            chunk.setdefault(report.room_id, []).append(report)
        for room, items in chunk.items():
            producer.send(topics["client_reports"], key=room.encode(),
                          value=schemas.encode(schemas.ReportBatch(reports=items)))
            last_produce_ms[room] = int(time.time() * 1000)
    producer.flush()
    producer.close()

    started = time.monotonic()
    app_id = f"bench-streams-{suffix}"
    env = dict(os.environ)
    env.update({f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in topics.items()})
    env.update({"OUTAGEWATCH_STREAMS_APP_ID": app_id, "OUTAGEWATCH_KAFKA_BOOTSTRAP": bootstrap})
    processes = [subprocess.Popen([sys.executable, "-m", "outagewatch", "worker", "--web-port", str(free_port()),
                                   "--idle-seconds", "2"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(topics["room_health"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=200)
    expected = {(report.room_id, report.ts - report.ts % (settings.streams.window_seconds * 1000))
                for report in reports}
    seen: set[tuple[str, int]] = set()
    lags: list[float] = []
    first_progress = last_progress = None
    committed_total = 0
    deadline = time.monotonic() + 600
    all_out = None
    try:
        while time.monotonic() < deadline and seen < expected:
            for message in consumer:
                health = schemas.decode(message.value, schemas.RoomHealth)
                if health.scope == "room":
                    seen.add((health.key, health.window_start))
                    lags.append((message.timestamp - last_produce_ms.get(health.key, message.timestamp)) / 1000)
            offsets = admin.list_group_offsets(app_id)
            offsets = offsets.get(app_id, offsets) if isinstance(offsets, dict) else {}
            total = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topics["client_reports"])
            if total > committed_total:
                stamp = time.monotonic()
                first_progress = first_progress or stamp
                last_progress, committed_total = stamp, total
        all_out = time.monotonic() - started
        rss = [_peak_rss_mb(process.pid) for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        consumer.close()
        admin.delete_topics(list(topics.values()))
        admin.close()
    elapsed = (last_progress - first_progress) if first_progress and last_progress else 0.0
    lags.sort()
    return {
        "bench": "streams", "workers": workers, "reports": count, "rooms": rooms,
        "windows_expected": len(expected), "windows_out": len(seen & expected),
        "seconds": round(elapsed, 2), "reports_per_s": round(count / elapsed) if elapsed > 0.5 else None,
        # Worker start to the last window out: includes group join and the idle close of the last windows.
        "seconds_incl_startup": round(all_out, 2) if all_out else None,
        "publish_lag_p95_s": round(lags[int(len(lags) * 0.95)], 2) if lags else None,
        "worker_peak_rss_mb": rss,
    }


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
