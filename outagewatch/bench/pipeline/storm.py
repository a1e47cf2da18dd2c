"""`outagewatch bench storm`: 10x and 100x surges of error reports on top of the background load.

After the detectors' warm-up, each surge hits its own watched room: every
failing client reports at once, i.e. ``factor`` times the background's
error-report rate (2% of ``rate``) offered over many connections (4 per
unit of factor, at most 400) in batches of 50, not retried when shed. Per
surge: offered, accepted and shed (503) reports, the highest RSS each
process was sampled at during the surge and the 15 s after it (and the
kernel's VmHWM at the end), the worker's lag, and whether the alert for
the room still fired and how fast (event and wall time from the surge).
The collector's per-key rate limit is lifted: what sheds is its in-flight
limit and Kafka back-pressure.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings
from outagewatch.bench.pipeline.figures import lag_summary
from outagewatch.bench.pipeline.harness import BenchRun, machine, past_start_ms
from outagewatch.bench.pipeline.load import Surge
from outagewatch.bench.pipeline.warmup import schedule
from outagewatch.pipeline.processes import memory_mib

ERROR_SHARE = 0.02  # the background's share of error reports (see load.background_templates)
FACTORS = (10, 100)


def run(settings: Settings, quick: bool = False, rate: float | None = None, seconds: float | None = None,
        database: str | None = None, **_: Any) -> list[dict[str, Any]]:
    rate = rate if rate is not None else (3_000.0 if quick else 100_000.0)
    surge_s = seconds if seconds is not None else (4.0 if quick else 20.0)
    window_s = settings.streams.window_seconds
    plan_times = schedule(quick, window_s)
    recovery_s = max(15.0, 6 * window_s / plan_times.speed)
    rooms = tuple(f"storm-room-{factor}x" for factor in FACTORS)
    surges = tuple(Surge(name=f"{factor}x", room=room, at_s=plan_times.warmup_wall_s + k * (surge_s + recovery_s),
                         seconds=surge_s, connections=min(400, 4 * factor) // (4 if quick else 1) or 1,
                         rate=factor * ERROR_SHARE * rate)
                   for k, (factor, room) in enumerate(zip(FACTORS, rooms, strict=True)))
    seconds_total = plan_times.warmup_wall_s + len(FACTORS) * (surge_s + recovery_s)
    conditions = machine()
    with BenchRun(settings, "storm", quick, database=database, watched_rooms=rooms) as bench:
        plan = bench.plan(seconds=seconds_total, rate=rate, event_start_ms=past_start_ms(seconds_total, plan_times.speed),
                          speed=plan_times.speed, rooms=200 if quick else 1000, surges=surges)
        load = bench.load(plan)
        waited = bench.wait_for_alerts([(s["room"], s["event_ms"]) for s in load["surges"]],
                                       20.0 if quick else 60.0)
        hwm = {name: memory_mib(pid).get("peak_rss_mib") for name, pid in bench.pipeline.pids().items()}
        account = bench.drain(plan, load["event_end_ms"], timeout_s=60.0 if quick else 300.0)
        assert bench.sampler is not None
        out = []
        for surge in load["surges"]:
            start = surge["wall_ms"] / 1000
            end = start + surge["seconds"] + recovery_s
            tally = load["tallies"][f"surge:{surge['name']}"]
            detection = bench.detection(surge["room"], surge["event_ms"], surge["wall_ms"], 5)
            out.append({
                "figure": f"surge_{surge['name']}", "room": surge["room"], "connections": surge["connections"],
                "offered_error_rate_target": round(int(surge["name"].rstrip("x")) * ERROR_SHARE * rate),
                "surge_seconds": surge["seconds"], "offered": tally["offered"], "accepted": tally["accepted"],
                "offered_per_s": round(tally["offered"] / surge["seconds"]) if surge["seconds"] else 0,
                "accepted_per_s": tally["accepted_per_s"], "shed_503": tally["shed_503"],
                "statuses": tally["statuses"], "latency_ms_p99": tally["latency_ms_p99"],
                "peak_rss_mib_sampled": bench.memory_between(start, end),
                "worker_lag_records": lag_summary(bench.sampler.lag_between(start, end, 1)),
                "alert_fired": detection["alert_fired"], "alert_event_latency_s": detection["event_latency_s"],
                "alert_wall_latency_s": detection["wall_latency_s"],
                "window_wall_latency_s": detection.get("window_wall_latency_s"),
            })
        run_id = bench.run_id
    head = {"benchmark": "storm", "run_id": run_id, "quick": quick}
    background = load["tallies"]["background"]
    return [
        *({**head, **row} for row in out),
        {**head, "figure": "storm_overall", "peak_rss_mib_vmhwm": hwm, "zero_loss": account["zero_loss"],
         "lost": account["lost"], "extra_rows": account["extra_rows"], "acknowledged": account["acknowledged"],
         "sampled_out": account["sampled_out"], "stored_rows": account["stored_rows"], "drained": account["drained"], "drain_seconds": account["drain_seconds"],
         "waited_for_alerts_s": waited, "background_acknowledged_per_s": background["accepted_per_s"],
         "background_shed_503": background["shed_503"], "offered_rate_target": rate,
         "watched_rooms_retried_503": load["tallies"]["watched"]["shed_503"],
         "cpu_cores_used": load["cpu_cores_used"], "event_speed": plan_times.speed, "machine": conditions},
    ]
