"""Scenario families: the same draw for the same seed, and labels that say what the recording holds."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from core.schemas import ERROR_CODES, KINDS
from core.timeutil import parse_event_time
from outagewatch.simulator.families import FAMILIES, QUICK, draw
from outagewatch.simulator.families.common import Draw
from outagewatch.simulator.population import CompiledSelector, Pool
from outagewatch.simulator.recording import Recording
from outagewatch.simulator.scenarios import curve_at
from outagewatch.simulator.wire import SPAMMER_CLIENTS, SUB_CLIENT, source_of
from outagewatch.simulator.world import BASE_ERROR_RATE

HEARTBEAT, JOIN, LEAVE, ERROR = (KINDS.index(k) for k in ("heartbeat", "join", "leave", "error"))
LOUD = [name for name, family in FAMILIES.items() if family.kind == "loud"]
SILENT = [name for name, family in FAMILIES.items() if family.kind == "silent"]
NEGATIVE = [name for name, family in FAMILIES.items() if family.kind == "negative"]
FIELDS = ("ts", "kind", "code", "client", "room", "platform", "version", "region")


@dataclass
class Run:
    draw: Draw
    labels: dict[str, Any]
    columns: dict[str, np.ndarray]

    def where(self, **conditions: Any) -> np.ndarray:
        mask = np.ones(self.columns["ts"].shape[0], dtype=bool)
        for name, value in conditions.items():
            mask &= self.columns[name] == value
        return mask

    def seconds(self) -> np.ndarray:
        return (self.columns["ts"] - self.draw.start_ms) // 1000


_runs: dict[tuple[str, int], Run] = {}


def run_of(name: str, seed: int = 0) -> Run:
    """One generated draw per (family, seed) for the whole module (quick budget)."""
    if (name, seed) not in _runs:
        recording = Recording(draw(name, seed, QUICK))
        parts: dict[str, list[np.ndarray]] = {field: [] for field in (*FIELDS, "weight", "origin", "hold")}
        for tick in recording.ticks():
            recording.loudness.add(tick)
            c = tick.columns
            for field in FIELDS:
                parts[field].append(getattr(c, field))
            parts["weight"].append(c.weights())
            parts["origin"].append(c.origins())
            parts["hold"].append(c.holds())
        columns = {field: np.concatenate(values) for field, values in parts.items()}
        _runs[(name, seed)] = Run(recording.draw, recording.labels(), columns)
    return _runs[(name, seed)]


def selected(run: Run, effect_index: int) -> np.ndarray:
    """Rows whose listener is in the effect's slice (its selector, fraction aside)."""
    effect = run.draw.scenario.effects[effect_index]
    whole = effect.selector.__class__(**{**effect.selector.__dict__, "fraction": 1.0})
    selector = CompiledSelector(effect.__class__(**{**effect.__dict__, "selector": whole}), run.draw.world)
    c = run.columns
    base = c["client"] % SUB_CLIENT
    return selector.mask(Pool(base, c["room"], c["platform"], c["version"], c["region"], np.zeros_like(base)))


def interval_s(run: Run, incident: dict[str, Any]) -> tuple[int, int]:
    start = (parse_event_time(incident["start"]) - run.draw.start_ms) // 1000
    end = (parse_event_time(incident["end"]) - run.draw.start_ms) // 1000
    return int(start), int(end)


def test_a_seed_gives_the_same_draw_and_bytes_and_another_seed_others() -> None:
    def digest(name: str, seed: int) -> str:
        h = hashlib.sha256()
        for tick in itertools.islice(Recording(draw(name, seed, QUICK)).ticks(), 120):
            h.update(b"\n".join(tick.report_lines()))
        return h.hexdigest()

    for name in ("room_small", "slice_dark", "spammer"):
        assert draw(name, 7, QUICK).params == draw(name, 7, QUICK).params
        assert digest(name, 7) == digest(name, 7)
        assert digest(name, 7) != digest(name, 8)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_draws_its_parameters_from_ranges(name: str) -> None:
    drawn = [json.dumps(draw(name, seed, QUICK).params, sort_keys=True) for seed in range(6)]
    assert len(set(drawn)) == 6, f"{name}: six seeds should give six different draws"
    assert len({draw(name, seed).start_ms for seed in range(6)}) > 1, "draws start at different times of day"


def test_room_sizes_cover_ten_to_a_million_listeners() -> None:
    sizes = [failure["people"] for name in ("room_small", "room_medium", "room_large") for seed in range(30)
             for failure in draw(name, seed).params["failures"]]
    assert min(sizes) < 30 and max(sizes) > 300_000
    decades = np.histogram(np.log10(sizes), bins=[1, 2, 3, 4, 5, 6])[0]
    assert (decades >= 8).all(), f"every decade of room size is drawn: {decades}"


@pytest.mark.parametrize("name", LOUD)
def test_a_loud_family_labels_where_and_when_its_failing_clients_report(name: str) -> None:
    run = run_of(name)
    incidents = run.labels["incidents"]
    assert incidents, f"{name} labels its failure"
    effects = run.draw.scenario.effects
    seconds = run.seconds()
    for index, effect in enumerate(effects):
        mine = run.where(origin=index, kind=ERROR)
        labelled = [i for i in incidents if i["key"] == effect.labels[0].key and i["scope"] == effect.labels[0].scope]
        assert len(labelled) == 1 and mine.sum() > 0
        (incident,) = labelled
        assert not incident["silent"] and incident["peak_clients_per_min"] > 0
        start, end = interval_s(run, incident)
        # Its errors come from its slice, during its incident (repeats come up to 10 s later).
        assert selected(run, index)[mine].all(), "every error of the failure comes from its slice"
        inside = mine & (seconds >= start) & (seconds < end + 11)
        assert inside.sum() == mine.sum()
        assert curve_at(effect.intensity, start - 1) == 0 < curve_at(effect.intensity, start), "labelled from its onset"
        if incident["loud_from"]:
            loud = (parse_event_time(incident["loud_from"]) - run.draw.start_ms) // 1000
            in_minute = mine & (seconds > loud - 60) & (seconds <= loud)
            assert run.columns["weight"][in_minute].sum() >= 5, "loud_from: 5 people reported it within a minute"
        else:
            assert incident["peak_clients_per_min"] < 5
        # At its loudest minute the failure's errors are well above the slice's normal ones.
        people = run.columns["weight"]
        normal = run.where(origin=-1, kind=ERROR) & selected(run, index) & (seconds >= start - 600) & (seconds < start)
        normal_per_min = people[normal].sum() / 10.0
        by_minute = np.bincount((seconds[inside] - start) // 60, weights=people[inside])
        assert by_minute.max() >= 1.5 * max(normal_per_min, 1.0), (  # drawn to be >= 3x at full strength
            f"{name}: the failure's loudest minute ({by_minute.max():.0f}) against {normal_per_min:.0f} normal a minute")


@pytest.mark.parametrize("name", SILENT)
@pytest.mark.parametrize("seed", [0, 1])
def test_a_silent_family_goes_quiet_where_and_when_it_says(name: str, seed: int) -> None:
    run = run_of(name, seed)
    (incident,) = run.labels["incidents"]
    assert incident["silent"] and incident["kind"] in ("heartbeat_loss", "silence")
    silence = run.draw.params["silence"]
    start, end = interval_s(run, incident)
    quiet_from = start + max(1, silence["ramp_s"])
    seconds = run.seconds()
    slice_ = selected(run, 0)
    beats = run.columns["weight"] * (run.where(kind=HEARTBEAT) & slice_)

    def per_s(first: int, last: int) -> float:
        return float(beats[(seconds >= first) & (seconds < last)].sum()) / max(1, last - first)

    before, during = per_s(start - 300, start), per_s(quiet_from, end)
    assert before > 0
    assert during <= before * (1.0 - 0.6 * silence["fraction"]), f"{name}: heartbeats {before:.1f}/s -> {during:.1f}/s"
    leaves = run.columns["weight"] * (run.where(kind=LEAVE) & slice_)
    leaving_before = leaves[(seconds >= start - 300) & (seconds < start)].sum() / 300
    leaving_during = leaves[(seconds >= quiet_from) & (seconds < end)].sum() / max(1, end - quiet_from)
    assert leaving_during <= 1.2 * leaving_before + 0.1, "what goes quiet does not leave"
    if silence["fraction"] == 1.0:
        arriving = slice_ & (seconds >= quiet_from) & (seconds < end) & (run.columns["hold"] == 0)
        assert not arriving.any(), "a slice gone dark sends nothing (what it queues arrives after)"
    if silence["backfill"]:
        held = run.columns["hold"] > 0
        assert held.any() and (run.columns["hold"][held] >= run.draw.start_ms + end * 1000).all()
        assert not (held & run.where(kind=HEARTBEAT)).any(), "heartbeats are not queued"
    if silence["final_code"]:
        crashes = run.where(origin=0, kind=ERROR, code=ERROR_CODES.index("crash"))
        assert crashes.any() and (seconds[crashes] < quiet_from + 2).all()


@pytest.mark.parametrize("name", NEGATIVE)
def test_a_negative_family_labels_nothing(name: str) -> None:
    run = run_of(name)
    assert run.labels == {"incidents": []}
    assert run.columns["ts"].shape[0] > 10_000


def test_a_room_that_ends_sends_leave_reports_for_its_listeners_then_nothing() -> None:
    run = run_of("room_ends")
    room = len(run.draw.world.room_ids) - 1  # the subject is the last room added
    ends = run.draw.params["ends"]
    mine = run.where(room=room)
    seconds = run.seconds()
    gone = (run.draw.duration_s - 10 * 60) + 1
    leaves = run.columns["weight"][mine & run.where(kind=LEAVE) & (seconds >= gone - ends["over_s"] - 1)].sum()
    assert leaves >= 0.5 * ends["people"]
    assert not (mine & (seconds > gone + 1)).any()


def test_a_spammer_is_one_network_under_its_invented_ids() -> None:
    for seed in range(4):
        run = run_of("spammer", seed)
        spam = run.where(origin=0, kind=ERROR)
        ids = np.unique(run.columns["client"][spam])
        assert spam.sum() > 100 and len(ids) <= run.draw.params["spam"]["ids"]
        assert (ids >= SPAMMER_CLIENTS).all() and {source_of(int(i)) for i in ids} == {"net-spam"}
    assert any(draw("spammer", seed, QUICK).params["spam"]["ids"] > 1 for seed in range(4))


def test_a_benign_surge_keeps_its_error_ratio() -> None:
    run = run_of("benign_surge")
    room = len(run.draw.world.room_ids) - 1
    surge = run.draw.params["surge"]
    seconds, weight = run.seconds(), run.columns["weight"]
    mine = run.where(room=room)
    t0 = run.draw.duration_s - 10 * 60 - surge["over_s"]

    def ratio(first: int, last: int) -> tuple[float, float]:
        span = (seconds >= first) & (seconds < last)
        beats = weight[mine & span & run.where(kind=HEARTBEAT)].sum()
        return beats, weight[mine & span & run.where(kind=ERROR)].sum() / beats

    (before, normal), (after, surged) = ratio(t0 - 300, t0), ratio(run.draw.duration_s - 300, run.draw.duration_s)
    assert after >= 1.5 * before
    assert 0.5 * normal <= surged <= 2.0 * normal + 3 * BASE_ERROR_RATE * 30


def test_broken_clocks_arrive_dated_2099_and_2001() -> None:
    recording = Recording(draw("broken_clocks", 2, QUICK))
    clocks = recording.draw.params["broken_clocks"]
    dated = [json.loads(line)["ts"] for batch in recording.report_batches() for line in batch]
    future = [ts for ts in dated if ts >= parse_event_time("2099-01-01T00:00:00Z")]
    past = [ts for ts in dated if ts < parse_event_time("2002-01-01T00:00:00Z")]
    assert len(future) == len(past) == clocks, "each broken clock sends exactly one report"


def test_the_source_stamp_is_in_recordings_only_and_only_once_the_schema_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.schemas import ClientReport
    from outagewatch.simulator import wire
    from outagewatch.simulator.engine import generate

    def lines(recorded: bool) -> list[dict[str, Any]]:
        if recorded:
            ticks = itertools.islice(Recording(draw("spammer", 0, QUICK)).ticks(), 5)
        else:
            ticks = generate("spammer", seed=0, scale=0.01, rooms=20, duration_s=5)
        return [json.loads(line) for tick in ticks for line in tick.report_lines()]

    assert ("source" in ClientReport.__struct_fields__) == any("source" in r for r in lines(recorded=True))
    monkeypatch.setattr(wire, "WRITES_SOURCE", True)
    assert all(r["source"].startswith("net-") for r in lines(recorded=True))
    assert not any("source" in r for r in lines(recorded=False)), "what goes to a collector carries no source"
