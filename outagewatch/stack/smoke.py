"""A round trip through the real stack, proving both components do real work."""

from __future__ import annotations

import time
import uuid
from typing import Any

from core import schemas
from core.config import Settings
from core.kafka_admin import ensure_topics
from history.client import connect, parse_url

SMOKE_TOPIC = "_outagewatch_smoke"


def smoke_check(settings: Settings) -> dict[str, Any]:
    """Send a client report through Kafka and a row through ClickHouse, read both back."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    report = schemas.ClientReport(
        report_id=uuid.uuid4().hex, ts=int(time.time() * 1000), client_id="smoke", room_id="smoke-room",
        kind="heartbeat", platform="other",
    )
    begin = time.monotonic()
    ensure_topics(settings.kafka.bootstrap, {SMOKE_TOPIC: 1})
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    try:
        sent = producer.send(SMOKE_TOPIC, key=report.room_id.encode(),
                             value=schemas.encode(schemas.ReportBatch([report]))).get(timeout=10)
    finally:
        producer.close(timeout=2)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, consumer_timeout_ms=10_000,
                             enable_auto_commit=False)
    received = None
    try:
        partition = TopicPartition(SMOKE_TOPIC, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        for message in consumer:
            received = schemas.decode_report_batch(message.value).reports[0]
            break
    finally:
        consumer.close()
    kafka_ok = received is not None and received.report_id == report.report_id
    kafka_ms = round((time.monotonic() - begin) * 1000, 1)

    begin = time.monotonic()
    target = parse_url(settings.clickhouse.url)
    client = connect(target)
    table = f"_smoke_{uuid.uuid4().hex[:8]}"
    try:
        client.execute(f"CREATE TABLE {table} (report_id String, ts DateTime) ENGINE = Memory")
        client.execute(f"INSERT INTO {table} (report_id, ts) VALUES",
                       [(report.report_id, int(report.ts) // 1000)])
        rows = client.execute(f"SELECT report_id FROM {table}")
        client.execute(f"DROP TABLE {table}")
    finally:
        client.disconnect()
    clickhouse_ok = rows == [(report.report_id,)]
    return {
        "ok": kafka_ok and clickhouse_ok,
        "kafka": {"round_trip": kafka_ok, "ms": kafka_ms, "bootstrap": settings.kafka.bootstrap},
        "clickhouse": {"insert_select": clickhouse_ok, "ms": round((time.monotonic() - begin) * 1000, 1),
                       "address": target.describe()},
    }
