"""`outagewatch bench history-sink`: reports/s through the sink (Kafka -> rows -> ClickHouse).

Produces ReportBatch messages (100 reports of one room each) to a fresh
topic first, then times the sink from start until every row is in a fresh
database: the rate at which it catches up with a backlog, i.e. the rate
it can sustain. Both are dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any

from core.config import Settings
from core.schemas import encode

PER_MESSAGE = 100


def _messages(total: int) -> list[tuple[bytes, bytes]]:
    base = 1_795_323_600_000
    out = []
    for m in range(total // PER_MESSAGE):
        room = f"room-{m % 500}"
        out.append((room.encode(), encode({"reports": [
            {"report_id": f"b-{m}-{i}", "ts": base + m * 10 + i, "client_id": f"c-{(m * 7 + i) % 100_000}",
             "room_id": room, "kind": "error" if i % 10 == 0 else "heartbeat", "platform": "ios",
             **({"error_code": "details_not_available"} if i % 10 == 0 else {}), "region": "eu-west",
             "app_version": "7.4.1", "latency_ms": float(i)} for i in range(PER_MESSAGE)]})))
    return out


def run(settings: Settings, quick: bool = False, **_: Any) -> list[dict[str, Any]]:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics
    from history.client import connect, parse_url
    from history.sink import run as run_sink

    total = 50_000 if quick else 1_000_000
    suffix = uuid.uuid4().hex[:8]
    topic, database = f"bench-client-reports-{suffix}", f"bench_history_{suffix}"
    ensure_topics(settings.kafka.bootstrap, {topic: settings.kafka.partitions})
    target = parse_url(settings.clickhouse.url).with_database(database)
    url = f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{database}"
    bench_settings = dataclasses.replace(
        settings, clickhouse=dataclasses.replace(settings.clickhouse, url=url),
        topics=dataclasses.replace(settings.topics, client_reports=topic))
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap, linger_ms=20, batch_size=1 << 20,
                             compression_type="lz4" if _has_lz4() else None)
    for key, value in _messages(total):
        producer.send(topic, key=key, value=value)
    producer.flush(120)
    producer.close()

    stop = threading.Event()
    sink = threading.Thread(target=run_sink, args=(bench_settings, stop),
                            kwargs={"group_id": f"bench-{suffix}", "topics": [topic]}, daemon=True)
    client = connect(target.with_database("default"))
    started = time.monotonic()
    sink.start()
    try:
        stored, first_seen, first_count = 0, 0.0, 0
        while stored < total and time.monotonic() - started < 600:
            time.sleep(0.1)
            try:
                stored = int(client.execute(f"SELECT count() FROM `{database}`.reports")[0][0])
            except Exception:  # noqa: BLE001 - table not created yet
                stored = 0
            if stored and not first_seen:
                first_seen, first_count = time.monotonic(), stored
        finished = time.monotonic()
        elapsed = finished - started
    finally:
        stop.set()
        sink.join(60)
        client.execute(f"DROP DATABASE IF EXISTS `{database}`")
        client.disconnect()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
        admin.delete_topics([topic])
        admin.close()
    return [{"benchmark": "history-sink", "reports": total, "stored": stored, "seconds": round(elapsed, 2),
             "reports_per_second": round((stored - first_count) / max(finished - first_seen, 1e-9)),
             "reports_per_second_with_startup": round(stored / elapsed), "batch_rows": settings.history.sink_batch_rows,
             "note": "steady rate from the first flush to the last row; one sink process"}]


def _has_lz4() -> bool:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return False
    return True
