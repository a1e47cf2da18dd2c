"""Where ticks go: files for offline evaluation, or Kafka directly.

Files: ``reports.ndjson`` (one client report per line, event-time order),
``metrics.ndjson`` (one metric sample per line), ``labels.json``.
Kafka: ``ReportBatch`` values keyed by room to the client-reports topic and
``MetricBatch`` values keyed by service to the server-metrics topic, the
shapes docs/contracts.md specifies (what the collector itself produces).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.schemas import MetricBatch, MetricSample, encode

from .engine import Tick
from .pacing import Delivery, Pacing, Progress

# A room's reports of one tick go out in values of at most this many reports,
# so a 700k-listener room stays under Kafka's 1 MiB default message size.
MAX_REPORTS_PER_MESSAGE = 1000


class TargetError(RuntimeError):
    """A target could not take the data; the message says what and why."""


def write_files(ticks: Iterable[Tick], out_dir: str | Path, label_doc: dict[str, Any], *,
                pacer: Pacing | None = None, progress: Progress | None = None) -> Delivery:
    """Write ``reports.ndjson``, ``metrics.ndjson`` and ``labels.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    delivery = Delivery("files")
    started = time.perf_counter()
    with (out / "reports.ndjson").open("wb") as reports, (out / "metrics.ndjson").open("wb") as metrics:
        for tick in ticks:
            _pace(pacer, tick)
            lines = tick.report_lines()
            if lines:
                reports.write(b"\n".join(lines) + b"\n")
            for sample in tick.metrics:
                metrics.write(encode(sample) + b"\n")
            delivery.reports += len(lines)
            delivery.metrics += len(tick.metrics)
            if progress:
                progress.update(delivery.reports, tick.start_ms)
    (out / "labels.json").write_text(json.dumps(label_doc, indent=2) + "\n")
    delivery.wall_s = time.perf_counter() - started
    return delivery


def room_batches(tick: Tick, max_reports: int = MAX_REPORTS_PER_MESSAGE) -> list[tuple[str, bytes]]:
    """(room_id, ``ReportBatch`` JSON) per room, in first-appearance order."""
    by_room: dict[str, list[bytes]] = defaultdict(list)
    for room, line in zip(tick.report_rooms(), tick.report_lines(), strict=True):
        by_room[room].append(line)
    out: list[tuple[str, bytes]] = []
    for room, lines in by_room.items():
        for first in range(0, len(lines), max_reports):
            out.append((room, b'{"reports":[' + b",".join(lines[first:first + max_reports]) + b"]}"))
    return out


def service_batches(samples: list[MetricSample]) -> list[tuple[str, bytes]]:
    """(service, ``MetricBatch`` JSON) per service."""
    by_service: dict[str, list[MetricSample]] = defaultdict(list)
    for sample in samples:
        by_service[sample.service].append(sample)
    return [(service, encode(MetricBatch(samples=items))) for service, items in by_service.items()]


def send_kafka(ticks: Iterable[Tick], bootstrap: str, reports_topic: str, metrics_topic: str, *,
               pacer: Pacing | None = None, progress: Progress | None = None,
               client_id: str = "outagewatch-simulator") -> Delivery:
    """Produce every tick to Kafka (acks=all) and wait until the broker has it all."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=20,
        batch_size=512 * 1024, compression_type="gzip", retries=10, max_request_size=4 * 1024 * 1024,
    )
    failures: list[BaseException] = []
    delivery = Delivery("kafka")
    started = time.perf_counter()
    try:
        for tick in ticks:
            _pace(pacer, tick)
            for room, value in room_batches(tick):
                producer.send(reports_topic, key=room.encode(), value=value).add_errback(failures.append)
                delivery.requests += 1
            for service, value in service_batches(tick.metrics):
                producer.send(metrics_topic, key=service.encode(), value=value).add_errback(failures.append)
                delivery.requests += 1
            delivery.reports += tick.n_reports
            delivery.metrics += len(tick.metrics)
            if failures:
                break
            if progress:
                progress.update(delivery.reports, tick.start_ms)
        producer.flush()
    except KafkaError as exc:
        raise TargetError(f"Kafka at {bootstrap} did not take the reports: {exc}") from exc
    finally:
        producer.close()
    if failures:
        raise TargetError(f"Kafka at {bootstrap} refused {len(failures)} messages, first: {failures[0]!r}")
    delivery.wall_s = time.perf_counter() - started
    return delivery


def _pace(pacer: Pacing | None, tick: Tick) -> None:
    if pacer is not None:
        delay = pacer.delay_s(tick.start_ms)
        if delay > 0:
            time.sleep(delay)
