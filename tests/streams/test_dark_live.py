"""Silent failures inside a real worker: a room whose heartbeats stop pages, on the real Kafka.

Twenty-one rooms heartbeat; after window 10 one room's clients all vanish
(no report at all, not even a leave). The worker gets no window for that
room any more: the other rooms' windows are what close its empty ones, and
its expected audience pages ``heartbeat_loss`` while the others keep
reporting. When the input stops altogether, the wall clock closes every
key's empty windows: the whole world gone dark pages too.
"""

from __future__ import annotations

import time

import pytest

from core import schemas
from core.schemas import Alert
from tests.streams.conftest import WINDOW_S, WorkerTopics, produce_batches, read_topic
from tests.streams.detection_scenarios import SPIKE_ROOM, room_window

pytestmark = pytest.mark.integration

ROOMS, WINDOWS, DARK_FROM = 21, 24, 10


def test_a_room_whose_heartbeats_stop_pages_in_a_live_worker(worker_topics: WorkerTopics,
                                                              kafka_bootstrap: str) -> None:
    alerts_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ALERTS"]
    window_ms = WINDOW_S * 1000
    start_ms = (time.time_ns() // 1_000_000 - 60_000) // window_ms * window_ms
    reports = [report for window in range(WINDOWS) for index in range(ROOMS)
               if not (f"room-{index}" == SPIKE_ROOM and window >= DARK_FROM)
               for report in room_window(f"room-{index}", window, window_ms, start_ms=start_ms,
                                         errors=0 if window % 4 else 1)]
    worker_topics.start()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports, per_batch=200)
    end_ms = start_ms + WINDOWS * window_ms

    def silent(alert: Alert) -> bool:
        return alert.kind == "heartbeat_loss" and alert.status == "firing"

    def dark_room_and_world(values: list[Alert]) -> bool:
        return (any(silent(a) and a.key == SPIKE_ROOM for a in values)
                and any(a.scope == "global" and a.status == "firing" for a in values))

    alerts = read_topic(kafka_bootstrap, alerts_topic, dark_room_and_world, 90,
                        lambda raw: schemas.decode(raw, Alert), worker_topics.alive)
    mine = [a for a in alerts if silent(a) and a.key == SPIKE_ROOM]
    assert mine, f"no heartbeat_loss alert for {SPIKE_ROOM}; got {alerts}\n{worker_topics.logs()}"
    # Judged while the other rooms still reported: their windows closed its empty ones.
    assert start_ms + DARK_FROM * window_ms <= mine[0].starts_at <= start_ms + (DARK_FROM + 4) * window_ms
    assert mine[0].event_ts < end_ms
    assert "people" in mine[0].summary and mine[0].severity in ("warning", "critical")
    # No other room went quiet while the input flowed.
    others = [a for a in alerts if a.scope == "room" and a.key != SPIKE_ROOM and a.starts_at < end_ms]
    assert others == [], others
    # Then the input stopped: the wall clock closed every key's empty windows, and the world is dark.
    world = [a for a in alerts if a.scope == "global" and a.status == "firing"]
    assert world and world[0].starts_at >= end_ms, world
    _marks_come_after_the_windows_they_vouch_for(kafka_bootstrap, worker_topics.room_health)


def _marks_come_after_the_windows_they_vouch_for(bootstrap: str, topic: str) -> None:
    """On each partition, no window ending by a mark's ``closed_upto`` comes after that mark."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=2000)
    marks: dict[int, int] = {}  # partition -> the newest mark read so far
    checked = 0
    try:
        for message in consumer:
            if schemas.is_event_time_mark(message.value):
                mark = schemas.decode(message.value, schemas.EventTimeMark).closed_upto
                marks[message.partition] = max(marks.get(message.partition, mark), mark)
                continue
            window = schemas.decode(message.value, schemas.RoomHealth)
            vouched = marks.get(message.partition)
            assert vouched is None or window.window_end > vouched, (
                f"{window.scope} {window.key} window ending {window.window_end} after a mark at {vouched} "
                f"on partition {message.partition}")
            checked += 1
    finally:
        consumer.close()
    assert checked > ROOMS * DARK_FROM and len(marks) == 2, (checked, marks)
