"""Reports of rooms that share a partition share a message, and land where each room belongs."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.batching import partition_of, report_records
from core.codec import decode_value
from core.schemas import ClientReport


def _reports(rooms: int, per_room: int) -> list[ClientReport]:
    return [ClientReport(report_id=f"r{room}-{n}", ts=1_795_323_600_000, client_id=f"c{n}", room_id=f"room-{room}",
                         kind="heartbeat", platform="ios") for room in range(rooms) for n in range(per_room)]


def test_one_message_per_partition_and_every_report_once() -> None:
    reports = _reports(rooms=100, per_room=3)
    records = report_records(reports, "t", partitions=8)
    assert len(records) == len({partition_of(f"room-{room}".encode(), 8) for room in range(100)}) <= 8
    carried = [r.report_id for record in records for r in decode_value(record.value)[0]]
    assert sorted(carried) == sorted(r.report_id for r in reports)
    for record in records:
        rooms = {r.room_id for r in decode_value(record.value)[0]}
        assert {partition_of(room.encode(), 8) for room in rooms} == {partition_of(record.key, 8)}


@pytest.mark.integration
def test_partition_of_matches_the_producer_on_the_real_broker(topic_factory: Any, kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    topic = topic_factory("partitions", partitions=8)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks=1)
    try:
        for room in range(200):
            key = f"room-{room}".encode()
            assert producer.send(topic, key=key, value=b"{}").get(timeout=10).partition == partition_of(key, 8)
    finally:
        producer.close()
