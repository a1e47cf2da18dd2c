"""group_lag against the real broker: what a consumer group still has to read."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from outagewatch.pipeline.running import group_lag


def _produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for partition, n in per_partition.items():
        for i in range(n):
            producer.send(topic, value=b"x%d" % i, partition=partition)
    producer.flush()
    producer.close()


def _commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    finally:
        consumer.close()


def test_a_group_that_has_not_joined_yet_is_behind_by_everything(kafka_bootstrap: str,
                                                                  topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("lag", partitions=2)
    _produce(kafka_bootstrap, topic, {0: 3, 1: 4})
    assert group_lag(kafka_bootstrap, f"nobody-{uuid.uuid4().hex[:6]}", topic) == 7


def test_partitions_without_a_commit_count_from_the_log_start(kafka_bootstrap: str,
                                                              topic_factory: Callable[..., str]) -> None:
    topic, other = topic_factory("lag", partitions=2), topic_factory("other", partitions=1)
    _produce(kafka_bootstrap, topic, {0: 3, 1: 4})
    _produce(kafka_bootstrap, other, {0: 5})
    group = f"g-{uuid.uuid4().hex[:6]}"
    _commit(kafka_bootstrap, group, topic, {0: 3})
    assert group_lag(kafka_bootstrap, group, topic) == 4
    assert group_lag(kafka_bootstrap, group, topic, other) == 9
    _commit(kafka_bootstrap, group, topic, {1: 4})
    _commit(kafka_bootstrap, group, other, {0: 5})
    assert group_lag(kafka_bootstrap, group, topic, other) == 0


def test_no_figure_while_none_of_the_topics_exists(kafka_bootstrap: str) -> None:
    assert group_lag(kafka_bootstrap, "g", f"missing-{uuid.uuid4().hex[:6]}") is None
