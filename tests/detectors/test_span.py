"""Spans: a trickle in a small room pages within about a minute; one source, or an incident's tail, does not."""

from __future__ import annotations

import json

import numpy as np

from core.schemas import RoomHealth
from detectors.ensemble import SPANS_ON, EnsembleConfig, RoomEnsemble
from detectors.span import ErrorSpans

SPANS = EnsembleConfig(span=SPANS_ON)  # off by default (EnsembleConfig.span)

START_MS = 1_795_323_600_000


def _window(index: int, listeners: float, crashers: list[int]) -> RoomHealth:
    """A room window whose crash clients are ``crashers`` (each its own source)."""
    count = float(len(crashers))
    by_code = {"crash": count} if crashers else {}
    return RoomHealth(key="room-40", window_start=START_MS + index * 10_000, window_end=START_MS + (index + 1) * 10_000,
                      listeners=listeners, error_clients=count, error_clients_by_code=by_code,
                      capped_error_clients=count, capped_error_clients_by_code=by_code, region="eu-west",
                      error_tokens_by_code={"crash": sorted(crashers)} if crashers else {})


def _background(rng: np.random.Generator, index: int) -> RoomHealth:
    """A 40-listener room (13 heartbeating a window) with its normal errors: one in 100 heartbeats."""
    people = [int(p) for p in rng.choice(1000, size=rng.poisson(0.13), replace=False)]
    return _window(index, 13.0, people)


def _crash_kinds(ensemble: RoomEnsemble, window: RoomHealth) -> dict[str, bool]:
    return {d.kind: d.bad for d in ensemble.observe(window) if d.kind in ("crash", "error_ratio")}


def test_a_third_of_a_40_listener_room_crashing_pages_within_a_minute_though_no_window_has_five() -> None:
    rng = np.random.default_rng(3)
    ensemble = RoomEnsemble(SPANS)
    quiet = [_crash_kinds(ensemble, _background(rng, i)) for i in range(120)]
    assert not any(any(kinds.values()) for kinds in quiet)
    failing = list(range(2000, 2013))  # 13 people, each crashing about every 45 s
    verdicts = []
    for i in range(120, 150):
        crashers = [p for p in failing if rng.random() < 10 / 45]
        assert len(crashers) < 5 or i > 125  # the window test alone would wait for five
        window = _window(i, 13.0, crashers)
        verdicts.append(_crash_kinds(ensemble, window))
    first_bad = next(i for i, kinds in enumerate(verdicts) if kinds.get("crash"))
    assert first_bad <= 6  # a minute of it is beyond doubt
    assert sum(kinds.get("crash", False) for kinds in verdicts) >= 20
    decision = next(d for d in ensemble.observe(_window(150, 13.0, failing[:3])) if d.kind == "crash")
    assert decision.bad and any(e.detector == "error_span" for e in decision.evidence)


def test_one_source_in_every_window_beside_ordinary_errors_is_not_an_outage() -> None:
    rng = np.random.default_rng(4)
    ensemble = RoomEnsemble(SPANS)
    for i in range(120):
        _crash_kinds(ensemble, _background(rng, i))
    spammer = 7_777
    verdicts = [_crash_kinds(ensemble, _window(i, 13.0, sorted({spammer, *_background(rng, i).error_tokens_by_code
                                                                 .get("crash", [])})))
                for i in range(120, 200)]
    assert not any(any(kinds.values()) for kinds in verdicts)


def test_the_tail_of_a_recovered_trickle_does_not_keep_the_span_bad() -> None:
    spans = ErrorSpans()
    baseline, floor = (8.0, 4000.0), 0.002
    for i in range(30):  # six people, each reporting every 30 s
        spans.window(i * 10_000, 13.0)
        spans.add("crash", i * 10_000, 2.0, frozenset({i % 3 * 2, i % 3 * 2 + 1}))
    assert spans.judge("crash", baseline, floor, 2.0, 5.0).bad
    for i in range(30, 40):  # recovered: one ordinary error
        spans.window(i * 10_000, 13.0)
        spans.add("crash", i * 10_000, 1.0 if i == 36 else 0.0, frozenset({99}) if i == 36 else frozenset())
    assert not spans.judge("crash", baseline, floor, 2.0, 5.0).bad


def test_spans_survive_the_state_round_trip() -> None:
    rng = np.random.default_rng(5)
    ensemble = RoomEnsemble(SPANS)
    for i in range(40):
        ensemble.observe(_window(i, 13.0, [int(p) for p in rng.choice(50, size=3, replace=False)]))
    restored = RoomEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())), SPANS)
    assert restored.to_state() == ensemble.to_state()
    window = _window(40, 13.0, [1, 2, 3])
    assert ensemble.observe(window) == restored.observe(window)


def _trickle(tell: bool) -> bool:
    """Half a 13-listener room's windows with one crash (seven people) for five minutes, learned whole
    into a baseline of 5 in 4000; whether the five-minute span is bad at its end."""
    spans = ErrorSpans()
    errors, trials = 5.0, 4000.0
    bad = False
    for i in range(30):
        start = i * 10_000
        spans.window(start, 13.0)
        crashed = 1.0 if i % 2 == 0 else 0.0
        if crashed:
            spans.add("crash", start, crashed, frozenset({i % 7}))
        bad = spans.judge("crash", (errors, trials), 0.002, 2.0, 5.0).bad
        errors, trials = errors + crashed, trials + 13.0  # the baseline learns the window after judging it
        if tell:
            spans.learned("crash", start, crashed)
    return bad


def test_a_trickle_its_baseline_learned_still_proves_its_span_once_the_span_is_told() -> None:
    assert not _trickle(tell=False)  # judged against its own windows: 20 in 4377 hides 15 in 390
    assert _trickle(tell=True)


def test_what_the_baseline_learned_survives_a_restart() -> None:
    spans = ErrorSpans()
    for i in range(3):
        spans.window(i * 10_000, 13.0)
        spans.add("crash", i * 10_000, 2.0, frozenset({1, 2}))
        spans.learned("crash", i * 10_000, 2.0)
    restored = ErrorSpans.from_state(json.loads(json.dumps(spans.to_state())))
    assert restored.taught == spans.taught
    assert restored.judge("crash", (5.0, 4000.0), 0.002, 2.0, 5.0) == spans.judge("crash", (5.0, 4000.0), 0.002,
                                                                                   2.0, 5.0)
