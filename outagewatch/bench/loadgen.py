"""A load generator for ``POST /v1/reports``: keep-alive connections sending batches as fast as answered.

Bodies are built once from a template and made unique per request by
rewriting a fixed-width request number inside every ``report_id`` (so the
collector's dedup does not drop them), which keeps the generator cheap
enough to share a 2-core machine with the collector.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from core import schemas

MARK = b"RQ0000000000"


@dataclass(frozen=True)
class LoadSpec:
    url: str
    api_key: str
    seconds: float
    connections: int = 8
    batch: int = 500
    rooms: int = 100
    templates: int = 16
    seed: int = 7


@dataclass
class LoadResult:
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    # Accepted heartbeats represented by a kept heartbeat's weight instead of their own record.
    sampled_out: int = 0
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)

        def quantile(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else -1.0

        return {
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "accepted": self.accepted,
            "sampled_out": self.sampled_out,
            "seconds": round(self.elapsed_s, 2),
            "accepted_per_s": round(self.accepted / self.elapsed_s) if self.elapsed_s else 0,
            "latency_ms_p50": quantile(0.50),
            "latency_ms_p99": quantile(0.99),
        }


def templates(spec: LoadSpec) -> list[tuple[bytes, int]]:
    """``(body, distinct rooms in it)`` templates: Zipf-like rooms, 95% heartbeats, the rest joins/errors."""
    rng = random.Random(spec.seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(spec.rooms)]
    # Dated now: inside the collector's event-time bound for any run shorter than event_time.max_age_seconds.
    base_ts = time.time_ns() // 1_000_000
    out: list[tuple[bytes, int]] = []
    for t in range(spec.templates):
        reports = []
        rooms = rng.choices(range(spec.rooms), weights, k=spec.batch)
        for i, room in enumerate(rooms):
            roll = rng.random()
            report: dict[str, Any] = {
                "report_id": f"{MARK.decode()}-{spec.seed}-{t}-{i}", "ts": base_ts + i, "client_id": f"client-{rng.randrange(10**6)}",
                "room_id": f"room-{room}", "platform": rng.choice(("ios", "android", "web")),
                "kind": "heartbeat", "app_version": "5.2.1", "region": "eu-west",
            }
            if roll > 0.97:
                report.update(kind="error", error_code=rng.choice(("details_not_available", "crash", "join_failed")))
            elif roll > 0.95:
                report["kind"] = "join"
            reports.append(report)
        out.append((schemas.encode({"reports": reports}), len(set(rooms))))
    return out


async def _generate(spec: LoadSpec) -> LoadResult:
    import aiohttp

    bodies = templates(spec)
    result = LoadResult()
    counter = 0
    headers = {"Authorization": f"Bearer {spec.api_key}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=spec.connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        deadline = started + spec.seconds

        async def connection() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                template, _rooms = bodies[counter % len(bodies)]
                body = template.replace(MARK, b"RQ%010d" % counter)
                sent = time.perf_counter()
                try:
                    async with session.post(f"{spec.url}/v1/reports", data=body, headers=headers) as answer:
                        payload = await answer.read()
                        status = answer.status
                except aiohttp.ClientError:
                    status = 599
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 202:
                    result.latencies_s.append(time.perf_counter() - sent)
                    answer_body = schemas.decode(payload, dict)
                    result.accepted += answer_body["accepted"]
                    result.sampled_out += answer_body.get("sampled_out", 0)
                elif status in (429, 503):
                    await asyncio.sleep(0.05)  # a polite client backs off a little

        await asyncio.gather(*(connection() for _ in range(spec.connections)))
        result.elapsed_s = time.perf_counter() - started
    return result


def generate(spec: LoadSpec) -> dict[str, Any]:
    """Run one load phase (blocking; meant for a child process) and summarise it."""
    return asyncio.run(_generate(spec)).summary()
