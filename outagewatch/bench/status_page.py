"""`outagewatch bench status-page`: a flood of anonymous visitors against the status page.

A database of its own on the configured ClickHouse (dropped afterwards) gets
24 hours of scores for ``components`` components and an open incident; the
page serves it with its cache period; ``connections`` keep-alive clients
fetch ``/``, ``/api/v2/summary.json`` and ``/api/v2/status.json`` in turn
for ``seconds``. Figures: requests/s, p50/p99 latency, and the ClickHouse
queries the server sent (counted by its source) against the cache periods
elapsed and the components shown. Client and server share this process and
its cores, so requests/s is a floor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import time
import uuid
from typing import Any

from core.config import Settings
from dashboards.status.server import ServerThread, build
from history import migrations
from history.api import writer_target
from history.client import connect
from outagewatch.stack.process import free_port

PATHS = ("/", "/api/v2/summary.json", "/api/v2/status.json")


def _seed(client: Any, now: int, components: int) -> None:
    day = now - 86_400
    client.execute(
        "INSERT INTO anomaly_scores (window_start, scope, key, detector, observed, baseline, lower, upper, score, "
        f"inserted_at) SELECT toDateTime({day} + (number % 8640) * 10), 'region', "
        f"concat('region-', toString(intDiv(number, 8640))), 'volume/volume_baseline', 10 + number % 5, 12, 0, 30, "
        f"0.1, toDateTime({now}) FROM system.numbers LIMIT {8640 * components}")
    client.execute(
        "INSERT INTO alerts (event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at, summary, "
        f"labels_json, evidence_json, affected, inserted_at) SELECT toDateTime({now - 290}), '4676650f04e6de4c', "
        f"'firing', 'cluster', 'region-0', 'correlated', 'critical', toDateTime({now - 300}), toDateTime(0), "
        f"'bench', '{{}}', '[]', [], toDateTime({now})")


async def _flood(url: str, connections: int, seconds: float) -> tuple[list[float], dict[int, int]]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def visitor(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url + PATHS[i % len(PATHS)]) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)
                i += 1
        await asyncio.gather(*(visitor(n) for n in range(connections)))
    return latencies, statuses


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(settings: Settings, quick: bool = False, seconds: float | None = None,
        connections: int | None = None) -> list[dict[str, Any]]:
    duration = seconds or (4.0 if quick else 20.0)
    clients = connections or 64
    components = 5 if quick else 20
    cache_seconds = 2.0 if quick else 5.0
    database = f"bench_status_{uuid.uuid4().hex[:8]}"
    target = writer_target(settings)
    admin = connect(target.with_database("default"))
    admin.execute(f"CREATE DATABASE {database}")
    try:
        writer = connect(target.with_database(database))
        now = int(time.time())
        version = str(writer.execute("SELECT version()")[0][0])
        migrations.apply(writer.execute, writer.execute, version, now)
        _seed(writer, now, components)
        writer.disconnect()
        url = (f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{database}")
        tuned = dataclasses.replace(
            settings, clickhouse=dataclasses.replace(settings.clickhouse, url=url),
            status_page=dataclasses.replace(settings.status_page, cache_seconds=cache_seconds))
        page, source = build(tuned)
        server = ServerThread(page, "127.0.0.1", free_port()).start()
        try:
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            latencies, statuses = asyncio.run(_flood(server.url, clients, duration))
            elapsed = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            server.stop()
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    periods = int(elapsed // cache_seconds) + 1
    shown = len(page.cache.snapshot.components) if page.cache.snapshot else 0
    return [{
        "benchmark": "status-page", "seconds": round(elapsed, 2), "connections": clients,
        "cache_seconds": cache_seconds, "components": shown, "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_quantile(latencies, 0.5) * 1000, 2), "p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "clickhouse_queries": source.queries_sent, "cache_periods": periods,
        "queries_per_period": round(source.queries_sent / periods, 2),
        "max_allowed_queries": periods * shown,
        "cpu_ms_per_request": round(cpu * 1000 / max(len(latencies), 1), 3),
    }]
