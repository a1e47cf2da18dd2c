"""group_lag against the real broker: what a consumer group still has to read; a room's stored errors on both
ClickHouse engines."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from history.client import ClickHouseTarget, connect
from outagewatch.pipeline.running import ROOM_ERRORS_SQL, group_lag
from tests.history.history_testkit import Chdb


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


# A surge room's stored errors: a replayed row, a client reporting at two weights, and rows the query must skip.
STORED_ERRORS = [
    ("p-s1", "c1", "flood", "error", 4.0, 1), ("p-s1", "c1", "flood", "error", 4.0, 2),
    ("p-s2", "c1", "flood", "error", 1.0, 1), ("p-s3", "c2", "flood", "error", 4.0, 1),
    ("p-s4", "c3", "flood", "heartbeat", 8.0, 1), ("p-s5", "c4", "other", "error", 4.0, 1),
    ("q-s6", "c5", "flood", "error", 4.0, 1),
]


def _rows() -> list[tuple[Any, ...]]:
    ts = datetime.fromtimestamp(1795323600, UTC).replace(tzinfo=None)
    return [(ts, 1795323600000, rid, client, room, kind, "crash" if kind == "error" else "", "ios", "", "", 0.0, weight,
             ts + timedelta(seconds=at)) for rid, client, room, kind, weight, at in STORED_ERRORS]


def _values_sql() -> str:
    return "INSERT INTO reports VALUES " + ", ".join(
        f"(toDateTime('{ts:%Y-%m-%d %H:%M:%S}', 'UTC'), {ms}, '{rid}', '{client}', '{room}', '{kind}', '{code}', "
        f"'{platform}', '', '', {latency}, {weight}, toDateTime('{at:%Y-%m-%d %H:%M:%S}', 'UTC'))"
        for ts, ms, rid, client, room, kind, code, platform, _, _, latency, weight, at in _rows())


@pytest.mark.integration
def test_a_rooms_stored_errors_are_counted_alike_on_both_engines(clickhouse_db: ClickHouseTarget) -> None:
    from history import migrations

    params = {"prefix": "p-s", "room": "flood"}
    expected = [3, 9.0, 2, 5.0]  # reports, their weight, distinct clients, each at its smallest weight
    client = connect(clickhouse_db)
    try:
        migrations.apply(client.execute, client.execute, client.execute("SELECT version()")[0][0], 1795323600)
        client.execute("INSERT INTO reports VALUES", _rows())
        assert [float(v) for v in client.execute(ROOM_ERRORS_SQL, params)[0]] == expected
    finally:
        client.disconnect()
    current = Chdb()
    try:
        migrations.apply(current.execute, current.rows, current.rows("SELECT version()")[0][0], 1795323600)
        current.execute(_values_sql())
        assert [float(v) for v in current.rows(ROOM_ERRORS_SQL, params)[0]] == expected
    finally:
        current.session.close()
