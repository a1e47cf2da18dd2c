"""The simulator's pure core: determinism, schema validity, labels that match the data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from core.schemas import ERROR_CODES, MetricSample, decode, decode_report
from core.timeutil import ManualClock, parse_event_time
from outagewatch.simulator import SCENARIOS, Pacer, generate, labels
from outagewatch.simulator.engine import ERROR, HEARTBEAT
from outagewatch.simulator.scenarios import curve_at
from outagewatch.simulator.wire import SPAMMER_CLIENTS
from outagewatch.simulator.world import BASE_ERROR_RATE, REGIONS, VERSION_NAMES, build_world

SCALE = 0.01
ROOMS = 40


@dataclass
class Run:
    ts: np.ndarray
    kind: np.ndarray
    code: np.ndarray
    client: np.ndarray
    room: np.ndarray
    version: np.ndarray
    region: np.ndarray
    room_ids: tuple[str, ...]
    room_cluster: np.ndarray
    metrics: list[MetricSample]
    labels: dict[str, Any]
    start_ms: int


_runs: dict[str, Run] = {}


def run_of(name: str) -> Run:
    """One generated run per scenario for the whole module (they take seconds)."""
    if name not in _runs:
        columns, metrics, start = [], [], None
        for tick in generate(name, seed=3, scale=SCALE, rooms=ROOMS):
            start = tick.start_ms if start is None else start
            columns.append(tick.columns)
            metrics.extend(tick.metrics)
        world = build_world(ROOMS, 3, {r: (s.cluster, s.main_region_share) for r, s in SCENARIOS[name].rooms.items()})
        cat = {field: np.concatenate([getattr(c, field) for c in columns])
               for field in ("ts", "kind", "code", "client", "room", "version", "region")}
        _runs[name] = Run(**cat, room_ids=world.room_ids, room_cluster=world.room_cluster, metrics=metrics,
                          labels=labels(name), start_ms=start or 0)
    return _runs[name]


def mask_for(run: Run, scope: str, key: str) -> np.ndarray:
    if scope == "room":
        return run.room == run.room_ids.index(key)
    if scope == "cluster":
        cluster = REGIONS.index(key)
        return (run.region == cluster) | (run.room_cluster[run.room] == cluster)
    if scope == "app_version":
        return run.version == VERSION_NAMES.index(key)
    assert scope == "global"
    return np.ones(run.ts.shape[0], dtype=bool)


def error_ratio(run: Run, mask: np.ndarray, start_ms: int, end_ms: int, code: str | None = None) -> float:
    """Errors (of ``code``, or any) per report in the masked reports of [start, end)."""
    inside = mask & (run.ts >= start_ms) & (run.ts < end_ms)
    errors = run.kind[inside] == ERROR
    if code is not None:
        errors &= run.code[inside] == ERROR_CODES.index(code)
    return float(errors.sum() / max(int(inside.sum()), 1))


ALERTING = [name for name, s in SCENARIOS.items() if s.should_alert]


@pytest.mark.parametrize("name", ALERTING)
def test_every_labelled_incident_is_visible_inside_its_interval_and_only_there(name: str) -> None:
    run = run_of(name)
    warmup_end = run.start_ms + SCENARIOS[name].warmup_s * 1000
    everyone = np.ones(run.ts.shape[0], dtype=bool)
    incidents = [i for i in run.labels["incidents"] if i["scope"] != "service"]
    assert incidents, "an alerting scenario must label at least one client-visible incident"
    for incident in incidents:
        start, end = parse_event_time(incident["start"]), parse_event_time(incident["end"])
        assert start >= warmup_end, "incidents start after the warm-up"
        mask, kind = mask_for(run, incident["scope"], incident["key"]), incident["kind"]
        # The world's normal ratios: a scripted room has no history of its own.
        baseline = error_ratio(run, everyone, run.start_ms, warmup_end)
        assert 0.002 < baseline < 0.03, (incident, baseline)
        assert error_ratio(run, mask, start, end) > 3 * baseline, incident
        kind_baseline = error_ratio(run, everyone, run.start_ms, warmup_end, kind)
        during = error_ratio(run, mask, start, end, kind)
        before = error_ratio(run, mask, start - 300_000, start, kind)
        after = error_ratio(run, mask, end + 180_000, end + 900_000, kind)
        assert during > 5 * kind_baseline, (incident, kind_baseline, during)
        assert before < 2.5 * kind_baseline, (incident, kind_baseline, before)
        if end + 900_000 <= run.ts[-1]:
            assert after < 2.5 * kind_baseline, (incident, kind_baseline, after)


def test_the_labelled_error_kind_is_what_spikes() -> None:
    run = run_of("app_version_crash")
    (incident,) = run.labels["incidents"]
    mask = mask_for(run, "app_version", "7.41.0")
    inside = mask & (run.ts >= parse_event_time(incident["start"])) & (run.ts < parse_event_time(incident["end"]))
    codes = np.bincount(run.code[inside & (run.kind == ERROR)], minlength=len(ERROR_CODES))
    assert ERROR_CODES[int(codes.argmax())] == "crash"
    other_versions = ~mask & (run.ts >= parse_event_time(incident["start"])) & (run.ts < parse_event_time(incident["end"]))
    assert error_ratio(run, other_versions, 0, 2**62) < 0.03, "the crash is confined to one app version"


def test_launch_night_has_room_cluster_global_and_service_incidents_and_strained_servers() -> None:
    run = run_of("launch_night")
    scopes = {(i["scope"], i["key"]) for i in run.labels["incidents"]}
    assert {("room", "launch-1"), ("cluster", "us-east"), ("global", "all"), ("service", "room-api")} <= scopes
    launch = run.room_ids.index("launch-1")
    listeners_peak = (run.kind[run.room == launch] == HEARTBEAT).sum()
    assert listeners_peak > 0
    # ~700k full-size at the peak -> ~7k at scale 0.01: heartbeats of one 30 s period.
    t_peak = run.start_ms + (SCENARIOS["launch_night"].warmup_s + 16 * 60) * 1000
    window = (run.room == launch) & (run.kind == HEARTBEAT) & (run.ts >= t_peak) & (run.ts < t_peak + 30_000)
    assert 5_000 < int(window.sum()) < 8_000
    codes = {ERROR_CODES[c] for c in run.code[(run.room == launch) & (run.kind == ERROR)]}
    assert {"details_not_available", "join_failed", "crash", "logged_out", "audio_garbled"} <= codes
    # The room is closed, and a second room takes the audience later.
    second = run.room_ids.index("launch-2")
    assert (run.room == second).sum() > 0 and run.ts[run.room == second].min() > run.ts[run.room == launch].max()
    for incident in (i for i in run.labels["incidents"] if i["scope"] == "service"):
        start, end = parse_event_time(incident["start"]), parse_event_time(incident["end"])
        values = [(m.ts, m.value) for m in run.metrics if m.service == incident["key"] and m.name == "error_rate"]
        calm = np.mean([v for ts, v in values if ts < start - 300_000])
        hot = np.mean([v for ts, v in values if start + 300_000 <= ts < end])
        assert hot > 10 * calm, (incident, calm, hot)


@pytest.mark.parametrize("name", [name for name, s in SCENARIOS.items() if not s.should_alert])
def test_negative_scenarios_label_nothing_and_keep_a_normal_error_ratio(name: str) -> None:
    run = run_of(name)
    assert run.labels == {"incidents": []}
    warmup_end = run.start_ms + SCENARIOS[name].warmup_s * 1000
    # The spammer's own reports are the trap; everyone else must look normal.
    everyone = run.client != SPAMMER_CLIENTS
    baseline = error_ratio(run, everyone, run.start_ms, warmup_end)
    assert error_ratio(run, everyone, warmup_end, 2**62) < 1.5 * baseline


def test_benign_surge_brings_a_big_audience_with_a_normal_error_ratio() -> None:
    run = run_of("benign_surge")
    surge = run.room == run.room_ids.index("surge-1")
    assert (surge & (run.kind == HEARTBEAT)).sum() > 50_000
    assert error_ratio(run, surge, 0, 2**62) < 2.5 * BASE_ERROR_RATE * 30


def test_spammer_is_one_client_in_one_room() -> None:
    run = run_of("spammer")
    room5 = run.room == run.room_ids.index("room-5")
    errors = room5 & (run.kind == ERROR)
    clients, counts = np.unique(run.client[errors], return_counts=True)
    assert counts.max() > 0.8 * errors.sum(), "almost all of room-5's errors come from one client"
    assert counts.max() > 3000 and (counts > 10).sum() == 1


def test_same_seed_same_bytes_and_another_seed_other_bytes() -> None:
    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for tick in generate("launch_night", seed=seed, scale=0.02, duration_s=240, rooms=40):
            h.update(b"\n".join(tick.report_lines()))
            h.update(b"".join(m.value.hex().encode() for m in tick.metrics))
        return h.hexdigest()

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def test_everything_generated_is_valid_under_the_schemas() -> None:
    seen_kinds: set[str] = set()
    last_ts = 0
    for tick in generate("launch_night", seed=1, scale=0.005, rooms=40, duration_s=300):
        for line in tick.report_lines():
            report = decode_report(line)
            assert report.ts >= last_ts, "reports come in event-time order"
            assert tick.start_ms <= report.ts < tick.end_ms
            last_ts = report.ts
            seen_kinds.add(report.kind)
        for sample in tick.metrics:
            decode(__import__("core.schemas").schemas.encode(sample), MetricSample)
        assert [r.report_id for r in tick.client_reports()] == [
            decode_report(line).report_id for line in tick.report_lines()]
    assert seen_kinds == {"heartbeat", "join", "leave", "error"}
    for name in SCENARIOS:
        for incident in labels(name)["incidents"]:
            assert set(incident) == {"id", "scope", "key", "kind", "start", "end"}
            assert incident["scope"] in {"room", "service", "cluster", "global", "app_version"}
            assert parse_event_time(incident["start"]) < parse_event_time(incident["end"])


def test_scale_multiplies_report_counts_but_not_ratios() -> None:
    def counts(scale: float) -> tuple[int, int]:
        reports = errors = 0
        for tick in generate("room_failure", seed=2, scale=scale, rooms=40, duration_s=600):
            reports += tick.n_reports
            errors += int((tick.columns.kind == ERROR).sum())
        return reports, errors

    small, big = counts(0.01), counts(0.04)
    assert 3.5 < big[0] / small[0] < 4.5
    assert abs(big[1] / big[0] - small[1] / small[0]) < 0.005


def test_labels_end_with_the_run_and_follow_the_intensity_curve() -> None:
    scenario = SCENARIOS["room_failure"]
    (incident,) = labels(scenario)["incidents"]
    (effect,) = scenario.effects
    start_s = (parse_event_time(incident["start"]) - parse_event_time("2026-11-23T00:00:00Z")) // 1000
    assert curve_at(effect.intensity, start_s - 1) == 0 < curve_at(effect.intensity, start_s)
    assert labels(scenario, duration_s=scenario.warmup_s) == {"incidents": []}


def test_unknown_scenario_and_missing_rooms_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: app_version_crash"):
        next(generate("nope"))
    with pytest.raises(ValueError, match="room-3.*more --rooms"):
        next(generate("room_failure", rooms=2))


def test_pacer_replays_event_time_compressed() -> None:
    clock = ManualClock(0)
    pacer = Pacer(speed=60, clock=clock)
    assert pacer.delay_s(1_000_000) == 0
    assert pacer.delay_s(1_000_000 + 3_600_000) == 60.0
    clock.advance(60_000)
    assert pacer.delay_s(1_000_000 + 3_600_000) == 0
