"""The collector's liveness rule through its real HTTP endpoints, with a producer that never acknowledges."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

import requests

from collectors.server import start
from collectors.sink import Record, SinkUnavailable
from core.config import Settings
from core.timeutil import ManualClock
from tests.collectors.helpers import BASE_TS, JSON, collector_settings, report


class HangingKafka:
    """Takes the records and never acknowledges them: a producer stuck on a broker that stopped answering."""

    def __init__(self) -> None:
        self.pending_bytes = 0
        self.give_up = threading.Event()

    async def send_all(self, records: Sequence[Record]) -> None:
        self.pending_bytes += sum(len(record.value) for record in records)
        while not self.give_up.is_set():
            await asyncio.sleep(0.05)
        raise SinkUnavailable("the test is over", 1.0)

    async def ready(self) -> bool:
        return True

    def partitions(self, topic: str) -> int:
        return 0


def test_bytes_waiting_for_kafka_with_no_acknowledgement_for_the_stall_time_is_not_live(settings: Settings) -> None:
    clock = ManualClock(BASE_TS)  # the collector's receive clock: the reports' time must be near it
    kafka = HangingKafka()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(
        start(collector_settings(settings, "unused"), port=0, clock=clock, sink=kafka), loop).result(30)
    try:
        assert requests.get(runner.url + "/healthz", timeout=5).status_code == 200
        poster = threading.Thread(target=lambda: _post_ignoring_timeout(runner.url), daemon=True)
        poster.start()
        for _ in range(100):  # the coalescer hands the request's records over after its linger
            if kafka.pending_bytes:
                break
            threading.Event().wait(0.05)
        assert kafka.pending_bytes, "the collector never handed the records to Kafka"
        threading.Event().wait(1.5)  # the next beat reads what waits
        clock.advance(119_000)
        assert requests.get(runner.url + "/healthz", timeout=5).status_code == 200
        threading.Event().wait(1.5)  # the loop still beats: only the acknowledgement is missing
        clock.advance(1_000)
        answer = requests.get(runner.url + "/healthz", timeout=5)
        assert answer.status_code == 503
        body = answer.json()
        assert body["status"] == "not live" and body["process"] == "collector"
        assert body["reason"].startswith(f"{kafka.pending_bytes} bytes sent to Kafka waiting and "
                                         "nothing moved for 120s")
        assert requests.get(runner.url + "/readyz", timeout=5).status_code == 503
    finally:
        kafka.give_up.set()
        asyncio.run_coroutine_threadsafe(runner.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _post_ignoring_timeout(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.post(url + "/v1/reports", json={"reports": [report(1)]}, headers=JSON, timeout=10)
