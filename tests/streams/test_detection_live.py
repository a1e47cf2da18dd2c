"""Detection and alerting inside a real worker: reports on Kafka -> alert events and one real webhook page."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core import schemas
from core.schemas import Alert, AnomalyScoreBatch
from streams.detection import replay_alerts
from tests.alerting.receiver import Receiver
from tests.streams.conftest import LATENESS_S, WINDOW_S, WorkerTopics, produce_batches, read_topic
from tests.streams.detection_scenarios import SPIKE_ROOM, spike, world

pytestmark = pytest.mark.integration


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """A real aiohttp receiver on its own event loop thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = asyncio.run_coroutine_threadsafe(Receiver().start(), loop).result(10)
    yield receiver
    asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def spike_alerts(alert: Alert) -> bool:
    return alert.scope == "room" and alert.key == SPIKE_ROOM and alert.kind == "details_not_available"


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_worker_pages_a_spike_once_and_resolves_it(worker_topics: WorkerTopics, kafka_bootstrap: str,
                                                   webhook: Receiver) -> None:
    # The fixture gives the worker its own alerts and anomaly-scores topics.
    alerts_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ALERTS"]
    scores_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ANOMALY_SCORES"]
    worker_topics.env["OUTAGEWATCH_ALERTING_WEBHOOK_URLS"] = f"{webhook.url}/hook"
    window_ms = WINDOW_S * 1000
    # Event time a minute back: once the input stops, idle partitions follow the clock and every window closes.
    start_ms = (time.time_ns() // 1_000_000 - 60_000) // window_ms * window_ms
    reports = list(world(16, window_ms, {SPIKE_ROOM: spike(range(6, 9))}, rooms=21, start_ms=start_ms))
    worker_topics.start()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports, per_batch=200)

    def resolved(values: list[Alert]) -> bool:
        return any(spike_alerts(a) and a.status == "resolved" for a in values)

    alerts = read_topic(kafka_bootstrap, alerts_topic, resolved, 75, lambda raw: schemas.decode(raw, Alert),
                        worker_topics.alive)
    assert resolved(alerts), f"no resolved alert for {SPIKE_ROOM}; got {alerts}\n{worker_topics.logs()}"
    mine = [a for a in alerts if spike_alerts(a)]
    assert [a.status for a in mine] == ["firing", "resolved"]
    assert mine[0].starts_at == start_ms + 6 * window_ms

    # The same reports replayed offline through the same pipeline give the same room alerts.
    offline = [e.alert for e in replay_alerts(reports, window_s=WINDOW_S, lateness_s=LATENESS_S)]
    assert [a for a in alerts if a.scope == "room"] == [a for a in offline if a.scope == "room"]

    def pages(status: str) -> list[Any]:
        return [r.body for r in webhook.requests if r.body.get("status") == status]

    assert wait_until(lambda: len(pages("resolved")) >= 1, 10), f"no resolved page: {webhook.requests}"
    firing = pages("firing")
    assert [(p["key"], p["kind"]) for p in firing] == [(SPIKE_ROOM, "details_not_available")]
    assert [(p["key"], p["kind"]) for p in pages("resolved")] == [(SPIKE_ROOM, "details_not_available")]
    assert firing[0]["fingerprint"] == mine[0].fingerprint

    batches = read_topic(kafka_bootstrap, scores_topic, lambda values: len(values) > 0, 10,
                         lambda raw: schemas.decode(raw, AnomalyScoreBatch))
    scores = [score for batch in batches for score in batch.scores]
    spiked = [s for s in scores if s.key == SPIKE_ROOM and s.detector == "details_not_available/error_ratio"
              and s.window_start == start_ms + 6 * window_ms]
    assert spiked and spiked[0].score >= 0.5 and spiked[0].observed > spiked[0].upper


def test_a_worker_killed_while_an_alert_fires_restores_it_and_pages_it_once(
        worker_topics: WorkerTopics, kafka_bootstrap: str, webhook: Receiver) -> None:
    """The alert engine's state (open alerts, notification log) survives a SIGKILL: found by bench chaos."""
    alerts_topic = worker_topics.env["OUTAGEWATCH_TOPICS_ALERTS"]
    worker_topics.env["OUTAGEWATCH_ALERTING_WEBHOOK_URLS"] = f"{webhook.url}/hook"
    window_ms = WINDOW_S * 1000
    start_ms = (time.time_ns() // 1_000_000 - 60_000) // window_ms * window_ms
    # Six clear windows after the spike resolve the alert (alerting.resolve_windows): 20 windows in all.
    reports = list(world(20, window_ms, {SPIKE_ROOM: spike(range(6, 12))}, rooms=21, start_ms=start_ms))
    # Up to the middle of the spike: the alert fires and is still open when the worker dies.
    cut = next(i for i, report in enumerate(reports) if report.ts >= start_ms + 10 * window_ms)
    first = worker_topics.start()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports[:cut], per_batch=200)

    def firing(values: list[Alert]) -> bool:
        return any(spike_alerts(a) and a.status == "firing" for a in values)

    alerts = read_topic(kafka_bootstrap, alerts_topic, firing, 75, lambda raw: schemas.decode(raw, Alert),
                        worker_topics.alive)
    assert firing(alerts), f"no firing alert for {SPIKE_ROOM}; got {alerts}\n{worker_topics.logs()}"
    assert wait_until(lambda: len(webhook.requests) >= 1, 10)
    time.sleep(3)  # the engine's state of that batch is saved and its changelog written
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    worker_topics.start("w2")
    produce_batches(kafka_bootstrap, worker_topics.reports, reports[cut:], per_batch=200)

    def resolved(values: list[Alert]) -> bool:
        return any(spike_alerts(a) and a.status == "resolved" for a in values)

    alerts = read_topic(kafka_bootstrap, alerts_topic, resolved, 120, lambda raw: schemas.decode(raw, Alert),
                        lambda: True)
    assert resolved(alerts), f"the open alert was not resolved after the restart: {alerts}\n{worker_topics.logs()}"
    restarted = (worker_topics.log_dir / "w2-1.log").read_text()
    assert re.search(r"alerting ready: [1-9]\d* open alerts restored", restarted), restarted[-3000:]
    mine = [(a.status, a.starts_at) for a in alerts if spike_alerts(a)]
    assert mine == [("firing", start_ms + 6 * window_ms), ("resolved", start_ms + 6 * window_ms)], mine
    assert wait_until(lambda: any(r.body.get("status") == "resolved" for r in webhook.requests), 10)
    pages = [(r.body["key"], r.body["status"]) for r in webhook.requests]
    assert pages == [(SPIKE_ROOM, "firing"), (SPIKE_ROOM, "resolved")], pages
