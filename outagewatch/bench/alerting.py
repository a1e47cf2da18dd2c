"""Benchmark: the one alerting consumer, decisions/s and CPU per decision at 1k, 10k and 100k rooms.

Two modes side by side: ``every decision`` (each detector partition sends
all its decisions) and ``forwarded`` (each sends only what can change an
alert and a ``LeafSummary``, ``alerting.forward``; its forwarder's CPU is
reported apart, it runs on the detector partitions, spread over the workers).
The forwarders are measured in steady state (``warmup_windows=0``): after a
restart or rebalance a partition forwards everything for ``resolve_windows``
windows, the cost of the first mode.

Every room is judged on every kind each window, as the detectors do (one
``Decision`` per kind, the evidence of a real detection run); a few rooms go
bad for a few windows (they fire, recover and resolve). The decisions reach
the consumer as the worker sends them: ``DecisionBatch`` JSON values, one per
detection batch, decoded and stepped window end by window end
(``streams.detection_agents``). CPU is this process's (``time.process_time``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

from alerting.forward import DecisionForwarder
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage
from core.config import load_settings
from core.schemas import Alert, Decision, LeafSummary
from outagewatch.simulator.synthetic import room_windows
from streams.detection import WindowDetection
from streams.detection_agents import DecisionBatch, alert_steps, newest

WINDOW_MS = 10_000
DETECT_BATCH_ROOMS = 2_000  # the worker's detection batch_max: one DecisionBatch per batch
AGENT_BATCH_VALUES = 5  # DecisionBatch values the alerting agent decodes and steps together
BAD_SHARE = 0.003  # rooms failing at any time: a realistic few
BAD_WINDOWS = 4  # each failing room is bad this many windows in a row (fires), then recovers
REGIONS = 8
ROOM_PARTITIONS = 12  # room-health partitions; one detection batch holds rooms of one partition here

_decoder = msgspec.json.Decoder(DecisionBatch)
_encoder = msgspec.json.Encoder()


def templates() -> list[Decision]:
    """One warm room's decisions of one window, every kind, as the detectors make them."""
    detection = WindowDetection()
    decisions: list[Decision] = []
    for window in room_windows(np.random.default_rng(0), [120.0] * 40):
        decisions = detection.observe(window, scores=False).decisions
    return decisions


def _is_bad(room: int, window: int, rooms: int) -> bool:
    failing = max(1, int(rooms * BAD_SHARE))
    period = max(rooms // failing, 1)
    # Room r fails from window (r // period) % 8 on, for BAD_WINDOWS windows, when r is a multiple of period.
    return room % period == 0 and 0 <= window - (room // period) % 8 < BAD_WINDOWS


def window_values(kinds: list[Decision], rooms: int, window: int, start_ms: int,
                  forwarders: dict[int, DecisionForwarder] | None, forward_cpu: list[float]) -> Iterator[bytes]:
    """The decisions topic's values for one window end: one ``DecisionBatch`` per detection batch.

    With ``forwarders`` (per partition), each batch is filtered first; its CPU is added to ``forward_cpu``.
    """
    begin, end = start_ms + window * WINDOW_MS, start_ms + (window + 1) * WINDOW_MS
    replace = msgspec.structs.replace
    for first in range(0, rooms, DETECT_BATCH_ROOMS):
        batch = []
        for room in range(first, min(first + DETECT_BATCH_ROOMS, rooms)):
            key, labels = f"room-{room}", {"region": f"region-{room % REGIONS}"}
            bad = _is_bad(room, window, rooms)
            for template in kinds:
                failing = bad and template.kind == "crash"
                batch.append(replace(template, key=key, window_start=begin, window_end=end, labels=labels,
                                     bad=failing, severity="warning" if failing else template.severity,
                                     score=0.9 if failing else template.score))
        partition = first // DETECT_BATCH_ROOMS % ROOM_PARTITIONS
        sources = {f"room-health:{partition}": end}
        if forwarders is None:
            yield _encoder.encode(DecisionBatch(batch, sources))
            continue
        started = time.process_time()
        kept, summary = forwarders[partition].forward(batch)
        forward_cpu[0] += time.process_time() - started
        yield _encoder.encode(DecisionBatch(kept, sources, [summary]))


def measure(rooms: int, windows: int, policy: AlertingPolicy, forward: bool) -> dict[str, Any]:
    kinds = templates()
    stage = AlertStage(policy)
    forwarders = ({p: DecisionForwarder(policy, f"room-health:{p}", warmup_windows=0) for p in range(ROOM_PARTITIONS)}
                  if forward else None)
    forward_cpu = [0.0]
    judged = rooms * len(kinds) * windows
    start_ms = 1_795_323_600_000
    decode_cpu = step_cpu = 0.0
    decisions = values = value_bytes = 0
    alerts: list[Alert] = []
    wall_started = time.perf_counter()
    for window in range(windows):
        pending: list[bytes] = []
        for value in window_values(kinds, rooms, window, start_ms, forwarders, forward_cpu):
            pending.append(value)
            if len(pending) == AGENT_BATCH_VALUES:
                cpu = _consume(stage, pending, alerts)
                decode_cpu, step_cpu, decisions = decode_cpu + cpu[0], step_cpu + cpu[1], decisions + cpu[2]
                values, value_bytes = values + len(pending), value_bytes + sum(map(len, pending))
                pending = []
        if pending:
            cpu = _consume(stage, pending, alerts)
            decode_cpu, step_cpu, decisions = decode_cpu + cpu[0], step_cpu + cpu[1], decisions + cpu[2]
            values, value_bytes = values + len(pending), value_bytes + sum(map(len, pending))
    total_cpu = decode_cpu + step_cpu
    per_window_cpu = total_cpu / windows
    return {
        "benchmark": "alerting", "mode": "forwarded" if forward else "every decision", "rooms": rooms,
        "kinds": len(kinds), "windows": windows, "judged": judged, "decisions": decisions,
        "alert_events": len(alerts), "values": values,
        "value_bytes_per_judged": round(value_bytes / judged, 1),
        "value_bytes_per_decision": round(value_bytes / max(decisions, 1), 1),
        "decode_us_per_decision": round(decode_cpu / max(decisions, 1) * 1e6, 2),
        "step_us_per_decision": round(step_cpu / max(decisions, 1) * 1e6, 2),
        "cpu_us_per_decision": round(total_cpu / max(decisions, 1) * 1e6, 2),
        "consumer_us_per_judged": round(total_cpu / judged * 1e6, 3),
        "judged_per_consumer_cpu_second": round(judged / total_cpu) if total_cpu else None,
        "forwarder_us_per_judged": round(forward_cpu[0] / judged * 1e6, 3) if forward else None,
        "cpu_seconds_per_window": round(per_window_cpu, 3),
        "core_share_at_10s_windows": round(per_window_cpu / (WINDOW_MS / 1000), 3),
        "fits_one_core": per_window_cpu < WINDOW_MS / 1000,
        "wall_seconds": round(time.perf_counter() - wall_started, 1),
        "_alerts": [msgspec.json.encode(alert) for alert in alerts],
    }


def _consume(stage: AlertStage, values: list[bytes], alerts: list[Alert]) -> tuple[float, float, int]:
    """What the alerting agent does with one batch of values: decode, then step per window end."""
    started = time.process_time()
    decisions: list[Decision] = []
    summaries: list[LeafSummary] = []
    sources: dict[str, int] = {}
    for value in values:
        decoded_value = _decoder.decode(value)
        decisions.extend(decoded_value.decisions)
        summaries.extend(decoded_value.summaries)
        newest(sources, decoded_value.sources)
    decoded = time.process_time()
    for window_batch, window_summaries, progress in alert_steps(decisions, summaries, sources):
        stage.engine.note_progress(progress)
        alerts.extend(emitted.alert for emitted in stage.step(window_batch, window_summaries))
    return decoded - started, time.process_time() - decoded, len(decisions)


def run(settings: object = None, quick: bool = False) -> list[dict[str, Any]]:
    # The worker's stage, its check of the silences file at each window end included.
    policy = AlertingPolicy.from_settings(load_settings(env={}).alerting, live_silences=True)
    sizes = [(1_000, 12), (10_000, 4), (100_000, 1)] if quick else [(1_000, 40), (10_000, 12), (100_000, 3)]
    results = []
    for rooms, windows in sizes:
        before, after = measure(rooms, windows, policy, False), measure(rooms, windows, policy, True)
        after["same_alert_events_as_every_decision"] = before.pop("_alerts") == after.pop("_alerts")
        after["consumer_cpu_ratio_vs_every_decision"] = round(
            after["cpu_seconds_per_window"] / before["cpu_seconds_per_window"], 4)
        after["value_bytes_ratio_vs_every_decision"] = round(
            after["value_bytes_per_judged"] / before["value_bytes_per_judged"], 4)
        results += [before, after]
    return results
