"""Broken client clocks cannot blind detection: 2099 and 2001 next to a real incident, over real Kafka and HTTP.

One report dated 2099 used to move its partition's watermark to 2099: every
real window closed at once and every later report was folded late into a
window that never closed, so the incident beside it paged nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from core import schemas
from core.config import Settings
from core.schemas import Alert, ClientReport, DeadLetter
from core.timeutil import parse_event_time
from streams.detection import replay_alerts
from tests.collectors.helpers import JSON, collector_settings, running_collector
from tests.streams.conftest import LATENESS_S, WINDOW_S, WorkerTopics, produce_batches, read_topic
from tests.streams.detection_scenarios import SPIKE_ROOM, spike, world

pytestmark = pytest.mark.integration

BROKEN = {"2099": parse_event_time("2099-01-01T00:00:00Z"), "2001-a": parse_event_time("2001-01-01T00:00:00Z"),
          "2001-b": parse_event_time("2001-06-01T12:00:00Z")}


def broken_report(name: str) -> ClientReport:
    return ClientReport(report_id=f"broken-{name}", ts=BROKEN[name], client_id=f"clock-{name}", room_id=SPIKE_ROOM,
                        kind="error", error_code="details_not_available", platform="ios", region="eu")


def test_the_collector_refuses_broken_clocks_and_keeps_the_rest(settings: Settings,
                                                                 topic_factory: Callable[..., str]) -> None:
    now = time.time_ns() // 1_000_000
    good = {"report_id": f"good-{now}", "ts": now, "client_id": "c", "room_id": SPIKE_ROOM, "kind": "join",
            "platform": "ios"}
    body = {"reports": [broken_report("2099"), good, broken_report("2001-a"), broken_report("2001-b")]}
    with running_collector(collector_settings(settings, topic_factory("clocks"))) as collector:
        answer = requests.post(collector.url + "/v1/reports", data=schemas.encode(body), headers=JSON, timeout=30)
        assert answer.status_code == 202, answer.text
        payload = answer.json()
        assert (payload["accepted"], payload["rejected"]) == (1, 3)
        errors = {item["index"]: item["error"] for item in payload["errors"]}
        assert set(errors) == {0, 2, 3}
        assert "ahead of its arrival" in errors[0] and "clock is wrong" in errors[0]
        assert "older than its arrival" in errors[2] and "older than its arrival" in errors[3]
        metrics = requests.get(collector.url + "/metrics", timeout=10).text
    assert 'outagewatch_collector_rejected_total{kind="reports",reason="ts_ahead"} 1.0' in metrics
    assert 'outagewatch_collector_rejected_total{kind="reports",reason="ts_too_old"} 2.0' in metrics


def test_an_incident_beside_broken_clocks_pages_as_it_does_without_them(worker_topics: WorkerTopics,
                                                                        kafka_bootstrap: str) -> None:
    alerts_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ALERTS"]
    window_ms = WINDOW_S * 1000
    start_ms = (time.time_ns() // 1_000_000 - 60_000) // window_ms * window_ms
    reports = list(world(16, window_ms, {SPIKE_ROOM: spike(range(6, 9))}, rooms=21, start_ms=start_ms))
    # What an older collector, or a replay, left in Kafka ahead of the incident, in the spike room's partition.
    first = [[broken_report("2099")], [broken_report("2001-a"), broken_report("2001-b")]]
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for batch in first:
        producer.send(worker_topics.reports, key=SPIKE_ROOM.encode(), value=schemas.encode(schemas.ReportBatch(batch)))
    producer.flush()
    producer.close()
    worker_topics.start()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports, per_batch=200)

    def resolved(values: list[Alert]) -> bool:
        return any(a.scope == "room" and a.key == SPIKE_ROOM and a.status == "resolved" for a in values)

    alerts = read_topic(kafka_bootstrap, alerts_topic, resolved, 90, lambda raw: schemas.decode(raw, Alert),
                        worker_topics.alive)
    assert resolved(alerts), f"the incident did not page and resolve; got {alerts}\n{worker_topics.logs()}"
    # Exactly the room alerts of the same reports without the broken ones, replayed offline.
    offline = [e.alert for e in replay_alerts(reports, window_s=WINDOW_S, lateness_s=LATENESS_S)]
    assert [a for a in alerts if a.scope == "room"] == [a for a in offline if a.scope == "room"]
    spike_alerts = [a for a in alerts if a.key == SPIKE_ROOM and a.kind == "details_not_available"]
    assert spike_alerts[0].status == "firing" and spike_alerts[0].starts_at == start_ms + 6 * window_ms

    letters = read_topic(kafka_bootstrap, worker_topics.dead_letter, lambda values: len(values) >= 2, 30,
                         lambda raw: schemas.decode(raw, DeadLetter))
    assert len(letters) == 2, letters
    refused = {r.report_id: letter.error for letter in letters
               for r in schemas.decode_report_batch(letter.raw).reports}
    assert set(refused) == {"broken-2099", "broken-2001-a", "broken-2001-b"}
    assert "ahead of its Kafka record" in refused["broken-2099"]
    assert "older than its Kafka record" in refused["broken-2001-a"]
