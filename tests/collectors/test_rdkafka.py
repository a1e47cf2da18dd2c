"""The librdkafka producer on the real broker: the partition it picks is the one the collector grouped for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from collectors.batching import partition_of
from collectors.rdkafka import LibrdkafkaProducer
from collectors.sink import ProducerSettings

pytestmark = pytest.mark.integration


class Delivered:
    """``collectors.sink.Acks`` that keeps librdkafka's delivery reports."""

    def __init__(self) -> None:
        self.partitions: dict[bytes, int] = {}
        self.errors: list[Any] = []
        self.all_in = threading.Event()
        self.expected = 0

    def ok(self, metadata: Any) -> None:
        raise AssertionError("librdkafka answers through delivered()")

    def failed(self, error: BaseException) -> None:
        self.errors.append(error)

    def delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self.errors.append(error)
        else:
            self.partitions[message.key()] = message.partition()
        if len(self.partitions) + len(self.errors) == self.expected:
            self.all_in.set()


def test_rooms_land_on_the_partition_the_collector_grouped_them_for(kafka_bootstrap: str,
                                                                    topic_factory: Callable[..., str]) -> None:
    # The collector puts the reports of all rooms of one partition in one record keyed by one of them
    # (collectors/batching.py, kafka-python's murmur2): a client hashing keys otherwise would split rooms.
    topic = topic_factory("rdkafka", partitions=8)
    producer = LibrdkafkaProducer(ProducerSettings(bootstrap=kafka_bootstrap))
    try:
        assert producer.partitions_for(topic) == set(range(8)) and producer.partition_count(topic) == 8
        keys = [f"room-{n}".encode() for n in range(200)]
        acks = Delivered()
        acks.expected = len(keys)
        for key in keys:
            producer.send(topic, b"x", key, acks)
        assert acks.all_in.wait(30) and not acks.errors
        assert acks.partitions == {key: partition_of(key, 8) for key in keys}
        assert len(set(acks.partitions.values())) == 8
    finally:
        producer.close(10.0)

