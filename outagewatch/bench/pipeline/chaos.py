"""`outagewatch bench chaos [--minutes N]`: the whole pipeline under load while faults hit it, counted.

On a Kafka broker and a ClickHouse server of its own (free ports, its own
data dirs: ``private_stack``), the pipeline (collector, worker, sink under
their supervisor) takes ``rate`` reports/s (about half of what it can take
here) for ``minutes`` while ``faults.schedule`` runs: SIGKILL the collector,
the worker and the sink (the supervisor restarts each), restart the broker,
stop ClickHouse for ``clickhouse_outage_s``. In the middle an incident
starts in a watched room. Watched rooms' reports are retried until
accepted, as real clients do; the background's are not (a refused request
is simply not acknowledged).

Prints one JSON object: each fault (when, what, how long the pipeline took
to be back), reports acknowledged, stored and lost (request by request),
duplicates visible to the shipped queries, duplicate pages, and the
incident's page delay in event time.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path
from typing import Any

from core.config import Settings
from outagewatch.bench.pipeline.accounting import (
    Rows,
    duplicate_pages,
    loss_by_request,
    server_rows,
    stored_by_request,
    visible_duplicates,
)
from outagewatch.bench.pipeline.faults import FaultRunner, schedule
from outagewatch.bench.pipeline.harness import BenchRun, machine
from outagewatch.bench.pipeline.load import Onset, request_key, run_plan
from outagewatch.bench.pipeline.private_stack import PrivateStack
from outagewatch.bench.pipeline.warmup import warmup_windows

log = logging.getLogger("outagewatch.bench.pipeline")

LISTENERS = 400
INCIDENT_ROOM = "chaos-room-0"
# How long, after the load ends, the faults still being recovered from are waited for.
RECOVERY_WAIT_S = 300.0


def run(settings: Settings, quick: bool = False, minutes: float | None = None, rate: float | None = None,
        connections: int | None = None, keep: bool = False, **_: Any) -> list[dict[str, Any]]:
    minutes = minutes if minutes is not None else (2.5 if quick else 10.0)
    # Half of what `bench e2e` acknowledged here (24k/s, load average 9, other work on the machine).
    rate = rate if rate is not None else (2_000.0 if quick else 10_000.0)
    seconds = minutes * 60
    window_s = settings.streams.window_seconds
    # Event time runs faster in a short run so the detectors warm up before the faults; it ends at
    # about now, never ahead of the collectors' clocks.
    speed = 1.0 if seconds >= 2 * warmup_windows() * window_s else 4.0
    clickhouse_outage_s = 60.0 if not quick else 15.0
    conditions = machine()
    # Logs stay in run/; the broker's and ClickHouse's data (gigabytes) go with the private stack.
    home = settings.stack.data_dir / "bench" / f"chaos-{time.strftime('%Y%m%dT%H%M%S')}"
    stack = PrivateStack(settings, home / "stack", keep=keep)
    try:
        stack.up()
        return [_measure(stack, home / "run", quick, minutes, seconds, rate, connections or 8, speed,
                         clickhouse_outage_s, conditions)]
    finally:
        stack.down()


def _measure(stack: PrivateStack, run_dir: Path, quick: bool, minutes: float, seconds: float, rate: float,
             connections: int, speed: float, clickhouse_outage_s: float, conditions: dict[str, Any]) -> dict[str, Any]:
    from history.client import parse_url

    faults = schedule(seconds)
    window_s = stack.settings.streams.window_seconds
    with BenchRun(stack.settings, "chaos", quick, watched_rooms=(INCIDENT_ROOM, "chaos-room-1"),
                  run_dir=run_dir) as bench:
        start_ms = int(time.time() * 1000) - int((speed - 1) * seconds * 1000)
        plan = bench.plan(seconds=seconds, rate=rate, event_start_ms=start_ms, speed=speed, connections=connections,
                          rooms=200 if quick else 1000, watched_listeners=LISTENERS,
                          onsets=(Onset(room=INCIDENT_ROOM, at_s=seconds * 0.5, event_seconds=6 * window_s,
                                        clients_per_window=LISTENERS // 2),))
        runner = FaultRunner(faults, bench.pipeline, stack, clickhouse_outage_s)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pending = pool.apply_async(run_plan, (plan,))
            runner.start(time.time())
            load = pending.get(timeout=seconds + 600)
        fault_results = runner.join(RECOVERY_WAIT_S)
        rows = server_rows(parse_url(bench.settings.clickhouse.url))
        key_length = len(request_key(bench.prefix, "b", 0))
        account = _drain(bench, rows, load["acked"], key_length, timeout_s=120 if quick else 300)
        onset = load["onsets"][0] if load["onsets"] else None
        incident = (bench.detection(INCIDENT_ROOM, onset["onset_event_ms"], onset["onset_wall_ms"], LISTENERS // 4)
                    if onset else {"alert_fired": False, "note": "the incident was never injected"})
        if onset and not incident["alert_fired"]:
            bench.wait_for_alerts([(INCIDENT_ROOM, onset["onset_event_ms"])], 60)
            incident = bench.detection(INCIDENT_ROOM, onset["onset_event_ms"], onset["onset_wall_ms"], LISTENERS // 4)
        duplicates = visible_duplicates(rows)
        pages = duplicate_pages(bench.receiver.received)
        supervisor = bench.pipeline.supervisor
        restarts = supervisor.restarts if supervisor is not None else {}
        events = [{"child": e.child, "what": e.what, "at": round(e.at, 1), "detail": e.detail[:300]}
                  for e in (supervisor.events if supervisor is not None else [])]
        run_id = bench.run_id
    background = load["tallies"]["background"]
    return {
        "benchmark": "chaos", "run_id": run_id, "quick": quick, "minutes": minutes, "event_speed": speed,
        "offered_rate_target": rate, "acknowledged_per_s": round(load["accepted"] / load["seconds"]),
        "faults": fault_results,
        "reports": {"acknowledged": load["accepted"], "sampled_out": load["sampled_out"],
                    "stored": account["rows_stored"] + account["stored_unacknowledged"], **account},
        "duplicates_visible_to_shipped_queries": duplicates,
        "pages": pages,
        "incident": {key: incident.get(key) for key in ("room", "alert_fired", "alert_kind", "alert_scope",
                                                        "event_latency_s", "wall_latency_s", "window_published")},
        "background": {"statuses": background["statuses"], "accepted": background["accepted"]},
        "restarts": restarts, "supervisor_events": events,
        "ok": verdict(account, duplicates, pages, fault_results, incident),
        "machine": conditions, "machine_after": machine(),
    }


def verdict(account: dict[str, Any], duplicates: dict[str, int], pages: dict[str, Any],
            faults: list[dict[str, Any]], incident: dict[str, Any]) -> bool:
    """The run's promise: nothing lost, nothing counted twice, nobody paged twice, every fault recovered,
    the incident paged within 60 s of event time."""
    visible = {name: count for name, count in duplicates.items() if name != "raw_report_rows_collapsed_by_final"}
    delay = incident.get("event_latency_s")
    return (account["lost"] == 0 and not any(visible.values()) and pages["duplicates"] == 0
            and all(fault["recovered"] for fault in faults) and delay is not None and delay <= 60)


def _drain(bench: BenchRun, rows: Rows, acked: list[tuple[str, int]], key_length: int,
           timeout_s: float) -> dict[str, Any]:
    """Wait until every acknowledged report is in ClickHouse (or the timeout); the account then."""
    started = time.monotonic()
    while True:
        account: dict[str, Any] = loss_by_request(acked, stored_by_request(rows, bench.prefix, key_length))
        if account["lost"] == 0 or time.monotonic() - started > timeout_s:
            break
        bench.pipeline.check()
        time.sleep(2)
    account["drain_seconds"] = round(time.monotonic() - started, 1)
    return account

