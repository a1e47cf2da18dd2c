"""A room flooding the real collector over HTTP, beside a quiet room: the flood is sampled, the quiet room loses
nothing, and what reaches the real broker still counts the flood right."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from collectors.server import CollectorRunner
from core.config import Settings
from tests.collectors.helpers import (
    BASE_TS,
    JSON,
    collector_settings,
    read_topic,
    report,
    running_collector,
    unique_prefix,
)

pytestmark = pytest.mark.integration

MAX_INFLIGHT = 16
FLOOD_CONNECTIONS = 96
FLOOD_SECONDS = 4.0


class Traffic:
    def __init__(self, runner: CollectorRunner, prefix: str) -> None:
        self.runner = runner
        self.prefix = prefix
        self.numbers = iter(range(10**9))
        self.answers: dict[str, list[tuple[int, dict[str, Any]]]] = {"flood": [], "quiet": []}
        self.quiet_ids: list[str] = []
        self.peak_inflight = 0
        self.metrics = ""

    async def post(self, session: aiohttp.ClientSession, room: str, items: list[dict[str, Any]]) -> int:
        async with session.post(f"{self.runner.url}/v1/reports", json={"reports": items}, headers=JSON) as answer:
            body = await answer.json(content_type=None)
            self.answers[room].append((answer.status, body))
            return answer.status

    def flood_batch(self) -> list[dict[str, Any]]:
        # 25 failing clients, each reporting twice: a kept client must have both reports kept.
        number = next(self.numbers)
        return [report(number * 50 + i, room="flood", kind="error", prefix=f"{self.prefix}f", client_id=f"f{number}-{i % 25}",
                       ts=BASE_TS + i) for i in range(50)]

    async def flood(self, session: aiohttp.ClientSession, until: float) -> None:
        while time.monotonic() < until:
            if await self.post(session, "flood", self.flood_batch()) != 202:
                await asyncio.sleep(0.05)

    async def quiet(self, session: aiohttp.ClientSession, until: float) -> None:
        """One listener's app: an error and a heartbeat every 50 ms, retried until accepted (a real client)."""
        await asyncio.sleep(0.5)  # the flood is under way
        while time.monotonic() < until:
            number = next(self.numbers)
            items = [report(number, room="quiet", kind="error", prefix=f"{self.prefix}qe", client_id=f"q{number % 7}"),
                     report(number, room="quiet", prefix=f"{self.prefix}qh", client_id=f"q{number % 7}")]
            while await self.post(session, "quiet", items) != 202:
                await asyncio.sleep(0.1)
            self.quiet_ids += [item["report_id"] for item in items]
            await asyncio.sleep(0.05)

    async def watch(self, until: float) -> None:
        while time.monotonic() < until:
            self.peak_inflight = max(self.peak_inflight, self.runner.collector.inflight)
            await asyncio.sleep(0.001)

    async def scrape(self, session: aiohttp.ClientSession, at: float) -> None:
        await asyncio.sleep(at)
        async with session.get(f"{self.runner.url}/metrics") as answer:
            self.metrics = await answer.text()

    async def run(self) -> None:
        until = time.monotonic() + FLOOD_SECONDS
        connector = aiohttp.TCPConnector(limit=FLOOD_CONNECTIONS + 4)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            await asyncio.gather(*(self.flood(session, until) for _ in range(FLOOD_CONNECTIONS)),
                                 self.quiet(session, until), self.watch(until),
                                 self.scrape(session, FLOOD_SECONDS - 1.0))


def test_a_flooding_room_is_sampled_and_the_quiet_room_loses_nothing(
        settings: Settings, topic_factory: Callable[..., str], kafka_bootstrap: str) -> None:
    topic = topic_factory("storm", partitions=2)
    config = collector_settings(settings, topic, max_inflight_requests=MAX_INFLIGHT, source_secret="storm-test",
                                source_rate_per_second=1e9, source_rate_burst=1e9, storm_min_kept_per_second=200.0)
    prefix = unique_prefix()
    with running_collector(config) as runner:
        traffic = Traffic(runner, prefix)
        asyncio.run(traffic.run())

    quiet = traffic.answers["quiet"]
    assert quiet and {status for status, _ in quiet} == {202}  # no 503: the flood did not take its place
    assert {(body["accepted"], body["sampled_out"]) for _, body in quiet} == {(2, 0)}
    flood = [body for status, body in traffic.answers["flood"] if status == 202]
    offered = sum(body["accepted"] for body in flood)
    dropped = sum(body["sampled_out"] for body in flood)
    assert offered > 20_000 and dropped > offered / 2
    # The flood held more requests in flight than max_inflight_requests, and the quiet room still got in.
    assert traffic.peak_inflight > MAX_INFLIGHT
    assert 'outagewatch_collector_storm_sampled_rooms 1.0' in traffic.metrics
    assert 'outagewatch_collector_storm_keep_ratio{room="flood"}' in traffic.metrics

    messages = read_topic(kafka_bootstrap, topic, offered - dropped + len(traffic.quiet_ids), timeout_s=60)
    stored = [item for _, batch in messages for item in batch.reports]
    assert len(stored) == offered - dropped + len(traffic.quiet_ids)
    quiet_stored = [item for item in stored if item.room_id == "quiet"]
    assert sorted(item.report_id for item in quiet_stored) == sorted(traffic.quiet_ids)
    assert all(item.weight == 1.0 for item in quiet_stored)  # in full, unweighted
    flood_stored = [item for item in stored if item.room_id == "flood"]
    # The flood's kept error reports carry the weight of the clients sampled out. Not every one does: the
    # requests still in flight as the flood ends find the collector's load fallen and are kept in full.
    assert sum(item.weight for item in flood_stored if item.weight > 1.0) > dropped / 2
    # Sampled by client: every kept client has both of its reports, carrying the same weight.
    per_client = Counter((item.client_id, item.weight) for item in flood_stored)
    assert set(per_client.values()) == {2}
    # Weighted, the flood's count is what it offered, within the sample's noise.
    assert sum(item.weight for item in flood_stored) == pytest.approx(offered, rel=0.1)
