"""`outagewatch bench storm`: 10x and 100x surges of error reports on top of the background load.

After the detectors' warm-up, each surge hits its own watched room: every
failing client reports at once, i.e. ``factor`` times the background's
error-report rate (2% of ``rate``) offered over many connections (4 per
unit of factor, at most 400, from a load process of their own: the
background's is not slowed by theirs) in batches of 50, not retried when shed. Per
surge: offered, accepted and shed (503) reports, the highest RSS each
process was sampled at during the surge and the 15 s after it (and the
kernel's VmHWM at the end), the worker's lag, and whether the alert for
the room still fired and how fast (event and wall time from the surge).
The collector's per-key rate limit is lifted: what sheds is its in-flight
limit and Kafka back-pressure, and what samples is its storm policy.

What a surge costs everyone else, from the same run: the background's
acknowledged rate and 503s during the surge against the same length of time
right before the first surge (``background``). Whether the surge room's counts
are right under sampling (``storm_counts``): its error reports stored in
ClickHouse (weights summed, and distinct clients each at its smallest
weight) and its windows' ``details_not_available`` errors and distinct error
clients, each against what the collector acknowledged for it (every surge
report is a distinct client); the smallest keep ratio ``/metrics`` showed.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings
from outagewatch.bench.pipeline.figures import lag_summary
from outagewatch.bench.pipeline.harness import BenchRun, machine, past_start_ms
from outagewatch.bench.pipeline.load import ONSET_CODE, Surge
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
        load = bench.load(plan, split=True)
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
            during = load["tallies"][f"background:surge:{surge['name']}"]
            calm = load["tallies"]["background:calm"]
            counts = storm_counts(bench, surge, tally["accepted"], tally["offered"], plan_times.speed)
            counts["collector_keep_ratio_min"] = bench.sampler.keep_ratios_between(start, end).get(surge["room"], 1.0)
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
                "background": {"acknowledged_per_s": during["accepted_per_s"],
                               "calm_acknowledged_per_s": calm["accepted_per_s"],
                               "vs_calm": _ratio(during["accepted_per_s"], calm["accepted_per_s"]),
                               "shed_503": during["shed_503"], "latency_ms_p99": during["latency_ms_p99"],
                               "calm_latency_ms_p99": calm["latency_ms_p99"]},
                "storm_counts": counts,
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
         "background_calm_acknowledged_per_s": load["tallies"]["background:calm"]["accepted_per_s"],
         "watched_rooms_retried_503": load["tallies"]["watched"]["shed_503"],
         "cpu_cores_used": load["cpu_cores_used"], "load_generator_cpu_seconds": load["load_cpu_seconds"], "event_speed": plan_times.speed, "machine": conditions},
    ]


def _ratio(value: float, reference: float) -> float | None:
    """``value / reference`` to four places, None without a reference.

    >>> _ratio(98, 100), _ratio(5, 0)
    (0.98, None)
    """
    return round(value / reference, 4) if reference else None


def storm_counts(bench: BenchRun, surge: dict[str, Any], acknowledged: int, offered: int,
                 speed: float) -> dict[str, Any]:
    """The surge room's counts downstream against what was acknowledged (see the module doc)."""
    assert bench.follower is not None
    stored = bench.pipeline.room_errors(f"{bench.prefix}s", surge["room"])
    until_ms = surge["event_ms"] + int(surge["seconds"] * speed * 1000)
    windows = bench.follower.windows_of(surge["room"], surge["event_ms"], until_ms)
    window_errors = sum(w.errors_by_code.get(ONSET_CODE, 0.0) for w in windows)
    window_clients = sum(w.error_clients_by_code.get(ONSET_CODE, 0.0) for w in windows)
    return {
        "acknowledged": acknowledged, "offered": offered, "stored_rows": stored.rows,
        "stored_weighted_errors": round(stored.weight, 1),
        "stored_weighted_errors_vs_acknowledged": _ratio(stored.weight, acknowledged),
        "stored_weighted_errors_vs_offered": _ratio(stored.weight, offered),
        "stored_weighted_clients_vs_acknowledged": _ratio(stored.weighted_clients, acknowledged),
        "windows": len(windows), "window_errors": round(window_errors, 1),
        "window_errors_vs_acknowledged": _ratio(window_errors, acknowledged),
        "window_error_clients": round(window_clients, 1),
        "window_error_clients_vs_acknowledged": _ratio(window_clients, acknowledged),
        "window_error_keep_min": min((w.error_keep for w in windows), default=1.0),
    }
