"""Scraping Prometheus text-format endpoints into ``MetricSample``s on ``server-metrics``.

Targets are ``URL=service[:cluster]``; without ``=service`` the service is
the target's host:port.

>>> parse_targets(["http://10.0.0.5:9100/metrics=audio-edge:eu-1", "http://db:9187/metrics"])
(ScrapeTarget(url='http://10.0.0.5:9100/metrics', service='audio-edge', cluster='eu-1', host='10.0.0.5:9100'), ScrapeTarget(url='http://db:9187/metrics', service='db:9187', cluster='', host='db:9187'))
>>> samples = to_samples('# TYPE up gauge\\nup{job="x"} 1\\n', parse_targets(["http://h:1/m=svc"])[0], 1795323600000)
>>> [(s.service, s.host, s.name, s.value, s.labels, s.ts) for s in samples]
[('svc', 'h:1', 'up', 1.0, {'job': 'x'}, 1795323600000)]
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from collectors.batching import sample_records
from collectors.metrics import CollectorMetrics
from collectors.sink import RecordSink, SinkUnavailable
from core.schemas import MetricSample
from core.timeutil import Clock

log = logging.getLogger("collectors.scraper")


class TargetError(ValueError):
    """A scrape target that is not ``URL=service[:cluster]``."""


@dataclass(frozen=True)
class ScrapeTarget:
    url: str
    service: str
    cluster: str
    host: str


def parse_target(text: str) -> ScrapeTarget:
    url, sep, labels = text.strip().rpartition("=")
    if not sep or "://" not in url or "/" in labels:
        url, labels = text.strip(), ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"scrape target {text!r} must be http(s)://host:port/path[=service[:cluster]]")
    service, _, cluster = labels.partition(":")
    return ScrapeTarget(url, service.strip() or parts.netloc, cluster.strip(), parts.netloc)


def parse_targets(texts: Iterable[str]) -> tuple[ScrapeTarget, ...]:
    return tuple(parse_target(text) for text in texts if text.strip())


def to_samples(text: str, target: ScrapeTarget, now_ms: int) -> list[MetricSample]:
    """Every finite sample of a scrape; the sample's own timestamp wins over the scrape time."""
    samples: list[MetricSample] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not math.isfinite(sample.value):
                continue
            ts = int(float(sample.timestamp) * 1000) if sample.timestamp else now_ms
            samples.append(MetricSample(ts=ts, service=target.service, cluster=target.cluster, host=target.host,
                                        name=sample.name[:200], value=float(sample.value),
                                        labels=dict(sample.labels)))
    return samples


class Scraper:
    """Scrapes every target each interval, concurrently, each with its own timeout."""

    def __init__(self, targets: tuple[ScrapeTarget, ...], sink: RecordSink, topic: str, timeout_s: float,
                 metrics: CollectorMetrics, clock: Clock) -> None:
        self.targets = targets
        self.sink = sink
        self.topic = topic
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.clock = clock

    async def scrape_once(self, session: aiohttp.ClientSession, target: ScrapeTarget) -> int:
        """Scrape one target and produce its samples; returns how many (0 on failure, logged)."""
        try:
            async with session.get(target.url, timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                text = await response.text()
            samples = to_samples(text, target, self.clock.now_ms())
        except Exception as exc:  # noqa: BLE001 - a target being down is routine, not fatal
            self.metrics.scrapes.labels(target.service, "scrape_failed").inc()
            log.warning("scrape of %s (service %s) failed: %s", target.url, target.service, exc or type(exc).__name__)
            return 0
        try:
            await self.sink.send_all(sample_records(samples, self.topic))
        except SinkUnavailable as exc:
            self.metrics.scrapes.labels(target.service, "kafka_failed").inc()
            log.warning("%d samples from %s not produced: %s", len(samples), target.url, exc.reason)
            return 0
        self.metrics.scrapes.labels(target.service, "ok").inc()
        self.metrics.accepted.labels("samples").inc(len(samples))
        return len(samples)

    async def scrape_all(self, session: aiohttp.ClientSession) -> int:
        counts = await asyncio.gather(*(self.scrape_once(session, target) for target in self.targets))
        return sum(counts)

    async def run_forever(self, interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            while True:
                started = loop.time()
                await self.scrape_all(session)
                await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))
