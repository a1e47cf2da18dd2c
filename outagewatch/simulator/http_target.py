"""Send ticks to the collector over HTTP, the way client apps do.

``POST /v1/reports`` with batches of up to 500 reports, gzip, and the API key
as ``Authorization: Bearer <secret>``; several connections at once. A 429 or
503 is the collector shedding load: the same batch is sent again after its
Retry-After, so nothing is lost; connection errors and other 5xx are retried
with backoff. A 401/403 or another 4xx stops the run with the collector's
reason, because retrying cannot fix it. Metric samples go to
``POST /v1/metrics`` as ``{"samples": [...]}``; if the collector has no such
endpoint (404) metrics are skipped with one warning.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp

from core.schemas import MetricBatch, encode

from .engine import Tick
from .pacing import Delivery, Pacing, Progress
from .targets import TargetError

log = logging.getLogger("outagewatch.simulate")

MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class HttpPolicy:
    batch_size: int = 500
    concurrency: int = 4
    gzip: bool = True
    timeout_s: float = 30.0
    # A batch that still has not been accepted after this long stops the run.
    give_up_after_s: float = 600.0
    backoff_start_s: float = 0.2
    backoff_max_s: float = 5.0


def send_http(ticks: Iterable[Tick], url: str, api_key: str, *, policy: HttpPolicy = HttpPolicy(),
              pacer: Pacing | None = None, progress: Progress | None = None) -> Delivery:
    """Deliver every report (and metric sample) to the collector at ``url`` (its base URL)."""
    return asyncio.run(_send(ticks, url.rstrip("/").removesuffix("/v1/reports"), api_key, policy, pacer, progress))


async def _send(ticks: Iterable[Tick], base: str, api_key: str, policy: HttpPolicy,
                pacer: Pacing | None, progress: Progress | None) -> Delivery:
    delivery = Delivery("http")
    started = time.perf_counter()
    queue: asyncio.Queue[tuple[str, bytes, int] | None] = asyncio.Queue(maxsize=policy.concurrency * 4)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if policy.gzip:
        headers["Content-Encoding"] = "gzip"
    state = {"metrics_enabled": True}
    connector = aiohttp.TCPConnector(limit=policy.concurrency)
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                path, body, count = item
                if path == "/v1/metrics" and not state["metrics_enabled"]:
                    continue
                await _post_until_accepted(session, base + path, body, count, policy, delivery, state)

        async def feed() -> None:
            for tick in ticks:
                if pacer is not None:
                    await asyncio.sleep(pacer.delay_s(tick.start_ms))
                lines = tick.report_lines()
                for first in range(0, len(lines), policy.batch_size):
                    chunk = lines[first:first + policy.batch_size]
                    await queue.put(("/v1/reports", _body(b'{"reports":[' + b",".join(chunk) + b"]}", policy), len(chunk)))
                if tick.metrics and state["metrics_enabled"]:
                    await queue.put(("/v1/metrics", _body(encode(MetricBatch(samples=tick.metrics)), policy), 0))
                if progress:
                    progress.update(delivery.reports, tick.start_ms)
            for _ in range(policy.concurrency):
                await queue.put(None)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(policy.concurrency):
                    group.create_task(worker())
                group.create_task(feed())
        except ExceptionGroup as failed:
            # One worker's reason (a refused key, a 4xx) is the run's reason.
            raise failed.exceptions[0] from None
    delivery.wall_s = time.perf_counter() - started
    return delivery


def _body(raw: bytes, policy: HttpPolicy) -> bytes:
    return gzip.compress(raw, compresslevel=1) if policy.gzip else raw


async def _post_until_accepted(session: aiohttp.ClientSession, url: str, body: bytes, count: int,
                               policy: HttpPolicy, delivery: Delivery, state: dict[str, bool]) -> None:
    deadline = time.monotonic() + policy.give_up_after_s
    backoff = policy.backoff_start_s
    while True:
        try:
            async with session.post(url, data=body) as response:
                status, text = response.status, await response.text()
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            status, text, retry_after = 0, f"{type(exc).__name__}: {exc}", None
        delivery.requests += 1
        if 200 <= status < 300:
            if count:
                delivery.reports += count
                delivery.rejected += _rejected(text)
            else:
                delivery.metrics += 1
            return
        if status == 404 and url.endswith("/v1/metrics"):
            if state["metrics_enabled"]:
                log.warning("collector at %s has no /v1/metrics (404): sending client reports only", url)
            state["metrics_enabled"] = False
            return
        if status in (401, 403):
            raise TargetError(f"collector at {url} refused the API key ({status}): {text[:200]}")
        if 400 <= status < 500 and status != 429:
            raise TargetError(f"collector at {url} rejected a batch ({status}): {text[:300]}")
        if time.monotonic() >= deadline:
            raise TargetError(f"collector at {url} has not accepted a batch for {policy.give_up_after_s:.0f} s; "
                              f"last answer: {status or text}")
        delivery.retries += 1
        if status in (429, 503) and retry_after is not None:
            wait = retry_after
        else:
            wait, backoff = backoff, min(backoff * 2, policy.backoff_max_s)
        log.debug("collector answered %s, retrying the same batch in %.2f s", status or text, wait)
        await asyncio.sleep(wait)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds; an HTTP date is treated as 1 s)."""
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return 1.0


def _rejected(text: str) -> int:
    import json

    try:
        return int(json.loads(text).get("rejected", 0))
    except (ValueError, AttributeError, TypeError):
        return 0
