"""ClickHouse down for 30 s mid-stream: the sink pauses, loses nothing, duplicates nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from core.config import Settings, TopicSettings
from history.client import ClickHouseTarget, connect
from outagewatch.stack.clickhouse import ClickHouseNode
from tests.history.history_testkit import (
    SinkThread,
    committed_offsets,
    produce,
    report_batches,
    room_windows,
    settings_for,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _count(target: ClickHouseTarget, sql: str) -> int:
    client = connect(target)
    try:
        return int(client.execute(sql)[0][0])
    except Exception:  # noqa: BLE001 - server down or tables not yet there
        return -1
    finally:
        client.disconnect()


def _stored(target: ClickHouseTarget) -> tuple[int, int]:
    """(report rows, room-health rows) in ClickHouse, -1 each while it is down."""
    return _count(target, "SELECT count() FROM reports"), _count(target, "SELECT count() FROM room_health")


def _caught_up(stored: tuple[int, int], wanted: tuple[int, int]) -> bool:
    return all(n >= want for n, want in zip(stored, wanted, strict=True))


def test_sink_survives_clickhouse_down_for_30_seconds(
    settings: Settings, kafka_bootstrap: str, private_clickhouse: ClickHouseNode, fresh_topics: TopicSettings,
    sink_factory: Callable[[Settings, str], SinkThread],
) -> None:
    target = private_clickhouse.target
    group = f"test-history-outage-{uuid.uuid4().hex[:8]}"
    sink = sink_factory(settings_for(settings, target, fresh_topics), group)
    reports = report_batches(batches=300, per_batch=40, rooms=5)
    windows = room_windows(rooms=4, windows=30)

    produce(kafka_bootstrap, fresh_topics.client_reports, reports[:100])
    produce(kafka_bootstrap, fresh_topics.room_health, windows[:40])
    wait_for(lambda: _stored(target) == (4000, 40), 60, "the first third", seen=lambda: _stored(target))

    assert private_clickhouse.stop()
    outage_started = time.monotonic()
    committed_at_stop = committed_offsets(kafka_bootstrap, group)[fresh_topics.client_reports]
    assert committed_at_stop == 100
    # Keep producing through the outage, in three waves.
    for wave in range(3):
        produce(kafka_bootstrap, fresh_topics.client_reports, reports[100 + wave * 50: 150 + wave * 50])
        produce(kafka_bootstrap, fresh_topics.room_health, windows[40 + wave * 20: 60 + wave * 20])
        time.sleep(8)
        assert sink.alive(), "the sink died while ClickHouse was down"
        # Nothing is committed that is not in ClickHouse.
        assert committed_offsets(kafka_bootstrap, group)[fresh_topics.client_reports] == committed_at_stop
    time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))

    private_clickhouse.start(timeout=60)
    produce(kafka_bootstrap, fresh_topics.client_reports, reports[250:])
    produce(kafka_bootstrap, fresh_topics.room_health, windows[100:])
    wait_for(lambda: _caught_up(_stored(target), (12_000, 120)), 40, "the sink to catch up",
             seen=lambda: _stored(target))
    wait_for(lambda: committed_offsets(kafka_bootstrap, group)[fresh_topics.client_reports] == 300, 10,
             "every offset committed", seen=lambda: committed_offsets(kafka_bootstrap, group))
    sink.join()

    assert sink.metrics.retries >= 1
    assert _count(target, "SELECT count() FROM reports") == 12_000  # no duplicate row written at all
    assert _count(target, "SELECT count() FROM reports FINAL") == 12_000
    assert _count(target, "SELECT uniqExact(report_id) FROM reports") == 12_000
    assert _count(target, "SELECT count() FROM room_health FINAL") == 120
    assert _count(target, "SELECT toUInt64(sumMerge(errors)) FROM room_health_1m") == sum(
        4 + r for r in range(4)) * 30
    assert _count(target, "SELECT toUInt64(sum(weight)) FROM reports FINAL") == sum(
        1 + (n % 3) for n in range(12_000))
