"""Forged reports over real HTTP: a thousand invented client ids from one address page no outage.

The collector stamps every report with its source (the client's network and
key); the worker counts each source for at most two error clients. One room
gets 340 errors a window (over a thousand in all) under invented client ids
from one script-like client on one address; another room gets the same
errors each from its own address (its own /24 on the loopback: 127.X.Y.1),
as real clients in real networks would send them. Only the second pages an
outage; the first is at most a suspected forgery.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from core import schemas
from core.config import Settings
from core.schemas import Alert
from tests.collectors.helpers import collector_settings, post_from, running_collector
from tests.streams.conftest import WINDOW_S, WorkerTopics, produce_batches, read_topic
from tests.streams.detection_scenarios import room_window

pytestmark = pytest.mark.integration

FORGED_ROOM, GENUINE_ROOM = "room-7", "room-3"
ROOMS, WINDOWS, SPIKE = 21, 16, range(6, 9)
ERRORS = 340  # three windows: over a thousand invented ids
KEY = "app-key"


def errors_of(room: str, window: int, start_ms: int) -> list[dict[str, Any]]:
    base = start_ms + window * WINDOW_S * 1000  # the ids below are invented: no such client ever listened
    return [{"report_id": f"{room}-{window}-x{i}", "ts": base + i, "client_id": f"{room}-invented-{window}-{i}",
             "room_id": room, "kind": "error", "error_code": "details_not_available", "platform": "ios",
             "region": "eu", "app_version": "5.1"} for i in range(ERRORS)]


def test_one_address_inventing_client_ids_pages_no_outage_many_addresses_do(
        settings: Settings, worker_topics: WorkerTopics, kafka_bootstrap: str) -> None:
    alerts_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ALERTS"]
    window_ms = WINDOW_S * 1000
    start_ms = (time.time_ns() // 1_000_000 - 60_000) // window_ms * window_ms
    config = collector_settings(settings, worker_topics.reports, coalesce_ms=1.0, api_keys=(f"app:{KEY}:reports",))
    worker_topics.start()
    with running_collector(config) as collector:
        for window in range(WINDOWS):
            # The rooms' listeners (one ordinary error each), straight into Kafka: unstamped, as a replay.
            normal = [report for index in range(ROOMS)
                      for report in room_window(f"room-{index}", window, window_ms, start_ms=start_ms)]
            produce_batches(kafka_bootstrap, worker_topics.reports, normal, per_batch=200)
            if window not in SPIKE:
                continue
            forged = errors_of(FORGED_ROOM, window, start_ms)
            for first in range(0, ERRORS, 100):  # one script, one address, batches of a hundred
                batch = forged[first:first + 100]
                assert post_from(collector.url, batch, "127.0.0.1", KEY)[1]["accepted"] == len(batch)
            for i, report in enumerate(errors_of(GENUINE_ROOM, window, start_ms)):
                assert post_from(collector.url, [report], f"127.{1 + i // 200}.{i % 200}.1", KEY)[1]["accepted"] == 1

    def settled(values: list[Alert]) -> bool:
        return any(a.key == GENUINE_ROOM and a.status == "resolved" and a.kind == "details_not_available"
                   for a in values)

    alerts = read_topic(kafka_bootstrap, alerts_topic, settled, 120, lambda raw: schemas.decode(raw, Alert),
                        worker_topics.alive)
    assert settled(alerts), f"the genuine outage did not page and resolve: {alerts}\n{worker_topics.logs()}"
    firing = [a for a in alerts if a.status == "firing"]
    genuine = [a for a in firing if a.key == GENUINE_ROOM and a.kind == "details_not_available"]
    assert genuine and genuine[0].starts_at == start_ms + SPIKE.start * window_ms
    forged_room = [a for a in firing if a.key == FORGED_ROOM]
    assert {a.kind for a in forged_room} == {"suspected_forgery"}, forged_room
    assert all(a.severity == "warning" and "not an outage" in a.summary for a in forged_room)
    assert not [a for a in firing if a.scope in ("cluster", "global", "region")], firing
