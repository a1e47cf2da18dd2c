"""`outagewatch bench e2e`: load -> collector (HTTP) -> Kafka -> worker and sink -> ClickHouse, with zero loss counted.

Offers ``rate`` reports/s (default 100k) for ``seconds`` (default 60) on
``connections`` keep-alive connections (default 16: with 8, each waiting
about 50 ms for its answer, the load itself capped the rate near 70k/s) and
prints one JSON object per figure: the rate the collector actually
acknowledged, the loss account (rows in ClickHouse against the reports the
collector answered 202 for minus the heartbeats it sampled out; weights
must sum to the acknowledged count), the worker's and the sink's lag while
the load ran (growing = the pipeline could not keep up), how long draining
took after the load stopped, each process's CPU and peak memory, and the
CPU microseconds per acknowledged report of each process, the broker,
ClickHouse and the load generator, from the load's start to the drain's end
(``outagewatch.bench.pipeline.cost``).
"""

from __future__ import annotations

import time
from typing import Any

from core.config import Settings
from outagewatch.bench.pipeline.cost import STACK_NOTE, cpu_per_report
from outagewatch.bench.pipeline.figures import lag_summary, peak_memory
from outagewatch.bench.pipeline.harness import BenchRun, machine


def run(settings: Settings, quick: bool = False, seconds: float | None = None, rate: float | None = None,
        database: str | None = None, connections: int = 16, **_: Any) -> list[dict[str, Any]]:
    seconds = seconds if seconds is not None else (8.0 if quick else 60.0)
    rate = rate if rate is not None else (5_000.0 if quick else 100_000.0)
    conditions = machine()
    with BenchRun(settings, "e2e", quick, database=database) as bench:
        plan = bench.plan(seconds=seconds, rate=rate, event_start_ms=int(time.time() * 1000),
                          connections=connections, rooms=200 if quick else 1000)
        cpu_before = bench.cpu()
        load = bench.load(plan)
        started, ended = load["wall_range"]
        account = bench.drain(plan, load["event_end_ms"], timeout_s=60.0 if quick else 300.0)
        cost = cpu_per_report(cpu_before, bench.cpu(), load["accepted"], load["load_cpu_seconds"])
        assert bench.sampler is not None
        worker_lag = lag_summary(bench.sampler.lag_between(started, ended, 1))
        sink_lag = lag_summary(bench.sampler.lag_between(started, ended, 2))
        memory = peak_memory(bench.sampler.memory)
        run_id = bench.run_id
    background = load["tallies"]["background"]
    head = {"benchmark": "e2e", "run_id": run_id, "quick": quick, "seconds": seconds, "connections": connections,
            "collector_processes": settings.collector.processes}
    return [
        {**head, "figure": "throughput", "offered_rate_target": rate,
         "offered_per_s": round(background["offered"] / load["seconds"]),
         "acknowledged_per_s": round(load["accepted"] / load["seconds"]),
         "load_seconds": load["seconds"], "background": background, "watched": load["tallies"]["watched"],
         "sustained": account["drained"] and not worker_lag["growing"]
                      and background["accepted"] >= 0.95 * rate * seconds,
         "machine": conditions},
        {**head, "figure": "zero_loss", **account},
        {**head, "figure": "worker_lag_records", **worker_lag, "sink": sink_lag},
        {**head, "figure": "drain", "drain_seconds": account["drain_seconds"], "drained": account["drained"]},
        {**head, "figure": "cpu_per_report", **cost, "measured": "load start to drain end",
         "stack_note": STACK_NOTE, "machine_after": machine()},
        {**head, "figure": "processes", "cpu_cores_used": load["cpu_cores_used"], "peak_rss_mib": memory,
         "machine_after": machine()},
    ]
