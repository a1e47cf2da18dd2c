"""`outagewatch bench kafka-clients`: kafka-python against librdkafka (confluent-kafka) on our own records.

Producers are ``collectors.sink``'s, exactly as the collector runs them
(``collector.kafka_client``: ``librdkafka`` is the default, chosen by this
benchmark); consumers have the ClickHouse sink's fetch settings (it reads
with kafka-python). Both clients run on the same broker and the same records:
packed ``client-reports`` values (``core.codec``) of ``per_record`` reports
each, lz4, ``acks=all``, keyed by room. Each phase runs in a fresh process;
its CPU (every thread: kafka-python's sender, librdkafka's own) is divided
by the reports it moved. The clients alternate, ``rounds`` times, so a
noisy machine hurts both alike; the summary gives the medians and the
ratios kafka-python / confluent-kafka (above 1: librdkafka is cheaper).
Consumers read every record of the topic, without decoding the reports
(the worker and the sink decode alike with either client).
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import time
import uuid
from typing import Any

from core.config import Settings

CLIENTS = ("kafka-python", "confluent-kafka")
CLIENT_SETTING = {"kafka-python": "kafka-python", "confluent-kafka": "librdkafka"}  # collector.kafka_client


def _records(count: int, per_record: int, seed: int = 5) -> list[tuple[bytes, bytes]]:
    """``count`` (room key, packed value) pairs of Zipf-spread heartbeats, joins and errors."""
    from core import codec
    from core.schemas import ClientReport

    rng = random.Random(seed)
    rooms = [f"room-{rank}" for rank in range(1000)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(1000)]
    base = int(time.time() * 1000)
    out = []
    for n in range(count):
        room = rng.choices(rooms, weights)[0]
        errors = [rng.random() > 0.97 for _ in range(per_record)]
        reports = [ClientReport(report_id=f"kc-{n}-{i}", ts=base + i, client_id=f"client-{rng.randrange(10**6)}",
                                room_id=room, kind="error" if error else "heartbeat",
                                platform=rng.choice(("ios", "android", "web")), app_version="5.2.1", region="eu-west",
                                error_code="crash" if error else None)
                   for i, error in enumerate(errors)]
        out.append((room.encode(), codec.encode_reports(reports)))
    return out


class _Count:
    """``collectors.sink.Acks`` that counts deliveries and remembers the first failure."""

    def __init__(self) -> None:
        self.done = 0
        self.error: object = None

    def ok(self, metadata: Any) -> None:
        self.done += 1

    def failed(self, error: BaseException) -> None:
        self.done += 1
        self.error = self.error or error

    def delivered(self, error: Any, message: Any) -> None:
        self.done += 1
        self.error = self.error or error


def _produce(client: str, bootstrap: str, topic: str, records: int, per_record: int) -> dict[str, float]:
    """Through ``collectors.sink``'s producer for ``client``, exactly as the collector runs it."""
    from collectors.sink import ProducerSettings, make_producer

    values = _records(records, per_record)
    producer = make_producer(ProducerSettings(bootstrap=bootstrap, client=CLIENT_SETTING[client]))
    producer.partitions_for(topic)
    acks = _Count()
    cpu, wall = time.process_time(), time.perf_counter()
    for key, value in values:
        producer.send(topic, value, key, acks)
    producer.close(60.0)  # flushes: every record acknowledged (or failed) before it returns
    used, elapsed = time.process_time() - cpu, time.perf_counter() - wall
    if acks.error is not None or acks.done != records:
        raise RuntimeError(f"{client} delivered {acks.done} of {records} records ({acks.error})")
    return {"cpu_s": used, "wall_s": elapsed}


def _consume(client: str, bootstrap: str, topic: str, records: int, timeout_s: float = 300.0) -> dict[str, float]:
    """Read the topic's ``records`` from its first offsets, every partition assigned (no group to join)."""
    seen = 0
    deadline = time.monotonic() + timeout_s
    if client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_min_bytes=1024 * 1024,
                                 fetch_max_wait_ms=200, max_partition_fetch_bytes=8 << 20)
        cpu, wall = time.process_time(), time.perf_counter()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while seen < records and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=1000).values():
                seen += len(messages)
        used, elapsed = time.process_time() - cpu, time.perf_counter() - wall
        consumer.close()
    else:
        from confluent_kafka import OFFSET_BEGINNING, Consumer
        from confluent_kafka import TopicPartition as Partition

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-kafka-clients",
                             "enable.auto.commit": False, "fetch.min.bytes": 1024 * 1024, "fetch.wait.max.ms": 200,
                             "max.partition.fetch.bytes": 8 << 20})
        cpu, wall = time.process_time(), time.perf_counter()
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in sorted(metadata.partitions)])
        while seen < records and time.monotonic() < deadline:
            seen += sum(1 for message in consumer.consume(num_messages=1000, timeout=1.0) if not message.error())
        used, elapsed = time.process_time() - cpu, time.perf_counter() - wall
        consumer.close()
    if seen < records:
        raise RuntimeError(f"{client} read {seen} of {records} records of {topic} within {timeout_s:.0f} s")
    return {"cpu_s": used, "wall_s": elapsed}


def _in_fresh_process(function: Any, *args: Any) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return dict(pool.apply(function, args))


def run(settings: Settings, quick: bool = False, **_: Any) -> list[dict[str, Any]]:
    try:
        import confluent_kafka  # noqa: F401 - present, or the error says how to get it
    except ImportError as exc:
        raise SystemExit("bench kafka-clients needs confluent-kafka: .venv/bin/pip install -e '.[dev]'") from exc
    from core.kafka_admin import ensure_topics

    bootstrap = settings.kafka.bootstrap
    records, per_record, rounds = (200, 250, 1) if quick else (2000, 250, 3)
    reports = records * per_record
    results: list[dict[str, Any]] = []
    per: dict[tuple[str, str], list[float]] = {}
    for round_no in range(rounds):
        for client in CLIENTS:
            topic = f"bench-kafka-clients-{uuid.uuid4().hex[:8]}"
            ensure_topics(bootstrap, {topic: settings.kafka.partitions})
            try:
                for phase, figures in (
                        ("produce", _in_fresh_process(_produce, client, bootstrap, topic, records, per_record)),
                        ("consume", _in_fresh_process(_consume, client, bootstrap, topic, records))):
                    cpu_us = figures["cpu_s"] * 1e6 / reports
                    per.setdefault((phase, client), []).append(cpu_us)
                    results.append({"benchmark": "kafka-clients", "round": round_no, "phase": phase, "client": client,
                                    "records": records, "reports_per_record": per_record,
                                    "cpu_us_per_report": round(cpu_us, 3),
                                    "reports_per_s": round(reports / figures["wall_s"]), "quick": quick})
            finally:
                _delete_topic(bootstrap, topic)
    for phase in ("produce", "consume"):
        ours, theirs = (statistics.median(per[(phase, client)]) for client in CLIENTS)
        results.append({"benchmark": "kafka-clients", "figure": "summary", "phase": phase,
                        "kafka_python_cpu_us_per_report": round(ours, 3),
                        "confluent_kafka_cpu_us_per_report": round(theirs, 3),
                        "ratio": round(ours / theirs, 2) if theirs else None, "rounds": rounds, "quick": quick})
    return results


def _delete_topic(bootstrap: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
