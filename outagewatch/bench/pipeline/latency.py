"""`outagewatch bench latency`: injected onset -> first firing alert on ``topics.alerts``, under background load.

The background offers ``rate`` reports/s (default 100k) while a few watched
rooms carry steady listeners. After the detectors' warm-up (the volume
baseline's warm-up windows plus two, see ``warmup``), onsets are injected
one after another, each in its own watched room: ``details_not_available``
from half the room's listeners' worth of distinct new clients per window.
For each onset: event-time latency (the alert's ``event_ts`` minus the
onset's first report ``ts``) and wall latency (alert arrival on the topic
minus the moment the first onset report was sent); also when the room's
window showing the spike was published (the streams part of the delay),
and the webhook notifications that mention the room. Full runs are in real
time (140 s of warm-up first); ``--quick`` runs event time 10x faster.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings
from outagewatch.bench.pipeline.figures import lag_summary, percentile
from outagewatch.bench.pipeline.harness import BenchRun, machine, past_start_ms
from outagewatch.bench.pipeline.load import Onset
from outagewatch.bench.pipeline.warmup import schedule, warmup_windows

LISTENERS = 400


def run(settings: Settings, quick: bool = False, rate: float | None = None, onsets: int | None = None,
        database: str | None = None, alert_timeout_s: float | None = None, **_: Any) -> list[dict[str, Any]]:
    alert_timeout_s = alert_timeout_s if alert_timeout_s is not None else (20.0 if quick else 60.0)
    rate = rate if rate is not None else (3_000.0 if quick else 100_000.0)
    count = onsets if onsets is not None else (1 if quick else 5)
    window_s = settings.streams.window_seconds
    plan_times = schedule(quick, window_s)
    spacing_wall_s = 9 * window_s / plan_times.speed  # every onset lasts 6 windows; 3 of quiet between
    rooms = tuple(f"onset-room-{k}" for k in range(count))
    seconds = plan_times.warmup_wall_s + count * spacing_wall_s + plan_times.settle_wall_s
    conditions = machine()
    with BenchRun(settings, "latency", quick, database=database, watched_rooms=rooms) as bench:
        plan = bench.plan(
            seconds=seconds, rate=rate, event_start_ms=past_start_ms(seconds, plan_times.speed), speed=plan_times.speed,
            rooms=200 if quick else 1000, watched_listeners=LISTENERS,
            onsets=tuple(Onset(room=room, at_s=plan_times.warmup_wall_s + k * spacing_wall_s,
                               event_seconds=6 * window_s, clients_per_window=LISTENERS // 2)
                         for k, room in enumerate(rooms)))
        load = bench.load(plan)
        waited = bench.wait_for_alerts([(o["room"], o["onset_event_ms"]) for o in load["onsets"]], alert_timeout_s)
        results = [bench.detection(o["room"], o["onset_event_ms"], o["onset_wall_ms"], LISTENERS // 4)
                   for o in load["onsets"]]
        assert bench.sampler is not None
        lag = lag_summary(bench.sampler.lag_between(load["wall_range"][0], load["wall_range"][1], 1))
        run_id = bench.run_id
    head = {"benchmark": "latency", "run_id": run_id, "quick": quick}
    event = [r["event_latency_s"] for r in results if r["event_latency_s"] is not None]
    wall = [r["wall_latency_s"] for r in results if r["wall_latency_s"] is not None]
    windows = [r["window_wall_latency_s"] for r in results if r.get("window_wall_latency_s") is not None]
    background = load["tallies"]["background"]
    return [
        *({**head, "figure": "onset", **result} for result in results),
        {**head, "figure": "detection_latency", "onsets": len(results), "detected": len(event),
         "event_latency_s_p50": percentile(event, 50), "event_latency_s_p95": percentile(event, 95),
         "wall_latency_s_p50": percentile(wall, 50), "wall_latency_s_p95": percentile(wall, 95),
         "window_published_wall_s_p95": percentile(windows, 95),
         "waited_after_load_s": waited, "alert_timeout_s": alert_timeout_s,
         "event_speed": plan_times.speed, "warmup_windows": warmup_windows(),
         "note": None if len(event) == len(results) else
         "some onsets raised no firing alert on topics.alerts (is detection running in the worker?)"},
        {**head, "figure": "background_load", "offered_rate_target": rate,
         "acknowledged_per_s": background["accepted_per_s"], "shed_503": background["shed_503"],
         "worker_lag_records": lag, "cpu_cores_used": load["cpu_cores_used"], "machine": conditions},
    ]
