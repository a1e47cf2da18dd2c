"""The local stack, for real: Kafka round trips, a Faust agent, ClickHouse insert/select."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from core import schemas
from core.config import Settings, load_settings
from history.client import ClickHouseTarget, connect
from outagewatch.stack import manager
from outagewatch.stack.process import free_port, port_open

pytestmark = pytest.mark.integration


def _report(index: int, room: str) -> schemas.ClientReport:
    return schemas.ClientReport(report_id=f"r{index}", ts=1_795_323_600_000 + index, client_id=f"c{index}",
                                room_id=room, kind="heartbeat", platform="ios")


def test_status_reports_both_components_healthy(stack: dict[str, Any], settings: Settings) -> None:
    state = manager.status(settings)
    assert state["kafka"]["healthy"] is True, state
    assert state["clickhouse"]["healthy"] is True, state
    assert state["clickhouse"]["version"]


def test_stack_created_every_topic_with_its_partitions(stack: dict[str, Any], settings: Settings) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    try:
        for topic in settings.topics.all():
            assert len(consumer.partitions_for_topic(topic) or ()) == settings.kafka.partitions, topic
    finally:
        consumer.close()


def test_kafka_python_produce_and_consume_keyed_batches(topic_factory: Any, kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = topic_factory("roundtrip", partitions=4)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    rooms = [f"room-{n}" for n in range(10)]
    for index in range(200):
        room = rooms[index % len(rooms)]
        producer.send(topic, key=room.encode(), value=schemas.encode(schemas.ReportBatch([_report(index, room)])))
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, group_id=f"g-{uuid.uuid4().hex[:6]}")
    partitions_by_room: dict[str, set[int]] = {}
    seen = 0
    for message in consumer:
        batch = schemas.decode_report_batch(message.value)
        for item in batch.reports:
            assert item.room_id == message.key.decode()
            partitions_by_room.setdefault(item.room_id, set()).add(message.partition)
        seen += len(batch.reports)
        if seen == 200:
            break
    consumer.close()
    assert seen == 200
    # Keyed by room: every room's reports land on exactly one partition.
    assert all(len(parts) == 1 for parts in partitions_by_room.values())


def test_faust_agent_consumes_a_topic_from_the_real_broker(topic_factory: Any, kafka_bootstrap: str,
                                                          tmp_path: Path) -> None:
    import faust

    topic_name = topic_factory("faust", partitions=2)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for index in range(50):
        producer.send(topic_name, key=b"room-1", value=schemas.encode(_report(index, "room-1")))
    producer.flush()
    producer.close()

    app = faust.App(f"test-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}", store="memory://",
                    web_enabled=False, datadir=str(tmp_path), topic_partitions=2,
                    consumer_auto_offset_reset="earliest")
    topic = app.topic(topic_name, value_serializer="raw")
    received: list[str] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def collect(stream: Any) -> None:
        async for value in stream:
            received.append(schemas.decode_report(value).report_id)
            if len(received) == 50:
                done.set()

    async def run() -> None:
        await app.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
        finally:
            await app.stop()

    asyncio.run(run())
    assert sorted(received) == sorted(f"r{n}" for n in range(50))


def test_clickhouse_insert_and_select(clickhouse_db: ClickHouseTarget) -> None:
    client = connect(clickhouse_db)
    try:
        client.execute(
            "CREATE TABLE reports (ts DateTime, room_id String, kind String) "
            "ENGINE = MergeTree PARTITION BY toDate(ts) ORDER BY (room_id, ts)"
        )
        rows = [(1_795_323_600 + n, f"room-{n % 3}", "heartbeat") for n in range(1000)]
        client.execute("INSERT INTO reports (ts, room_id, kind) VALUES", rows)
        counts = client.execute("SELECT room_id, count() FROM reports GROUP BY room_id ORDER BY room_id")
    finally:
        client.disconnect()
    assert counts == [("room-0", 334), ("room-1", 333), ("room-2", 333)]


@pytest.mark.slow
def test_private_stack_up_is_idempotent_and_down_leaves_nothing(tmp_path: Path, settings: Settings) -> None:
    """A second stack on free ports: up, up again, status, down — no process left."""
    kafka_port, controller_port, tcp_port, http_port = (free_port() for _ in range(4))
    env = {
        "OUTAGEWATCH_STACK_DATA_DIR": str(tmp_path / "data"),
        # Share the jar cache with the main stack: no second download.
        "OUTAGEWATCH_STACK_CACHE_DIR": str(settings.stack.cache_dir),
        "OUTAGEWATCH_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "OUTAGEWATCH_KAFKA_CONTROLLER_PORT": str(controller_port),
        "OUTAGEWATCH_KAFKA_PARTITIONS": "2",
        "OUTAGEWATCH_STACK_KAFKA_HEAP": "512m",
        "OUTAGEWATCH_CLICKHOUSE_URL": f"clickhouse://default:@127.0.0.1:{tcp_port}/private",
        "OUTAGEWATCH_CLICKHOUSE_HTTP_PORT": str(http_port),
    }
    private = load_settings(env=env)
    try:
        first = manager.up(private)
        assert first["kafka"]["healthy"] and first["clickhouse"]["healthy"], first
        assert set(first["started_seconds"]) == {"kafka", "clickhouse"}
        pids = (first["kafka"]["pid"], first["clickhouse"]["pid"])
        second = manager.up(private)
        assert second["started_seconds"] == {}  # already running: nothing started again
        assert (second["kafka"]["pid"], second["clickhouse"]["pid"]) == pids
    finally:
        stopped = manager.down(private)
    assert stopped == {"kafka": True, "clickhouse": True}
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
    assert not port_open("127.0.0.1", kafka_port) and not port_open("127.0.0.1", tcp_port)
    after = manager.status(private)
    assert after["kafka"]["healthy"] is False and "stack up" in after["kafka"]["error"]
    assert manager.down(private) == {"kafka": False, "clickhouse": False}


def test_external_component_is_used_as_is(stack: dict[str, Any], settings: Settings, tmp_path: Path) -> None:
    """Pointing at an address that already answers: up starts nothing of ours."""
    env = {
        "OUTAGEWATCH_STACK_DATA_DIR": str(tmp_path / "elsewhere"),
        "OUTAGEWATCH_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "OUTAGEWATCH_CLICKHOUSE_URL": settings.clickhouse.url,
        "OUTAGEWATCH_STACK_CACHE_DIR": str(settings.stack.cache_dir),
    }
    other = load_settings(env=env)
    state = manager.up(other)
    assert state["started_seconds"] == {}
    assert state["kafka"]["managed"] is False and state["kafka"]["healthy"] is True
    assert state["clickhouse"]["managed"] is False and state["clickhouse"]["healthy"] is True
    assert manager.down(other) == {"kafka": False, "clickhouse": False}
    assert port_open(*settings.kafka.bootstrap.split(":")[0:1], int(settings.kafka.bootstrap.split(":")[1]))


def test_cli_status_prints_json(stack: dict[str, Any]) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "outagewatch", "stack", "status"], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=60)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["kafka"]["healthy"] and state["clickhouse"]["healthy"]
