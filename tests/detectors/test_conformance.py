"""The checks every detector passes (river's shared detector check, adapted).

Each case says how to build the detector with a seed, how to draw its i-th
input from a seeded generator (with an obvious anomaly now and then), and how
many learned inputs its warm-up lasts.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from detectors.audience import Audience
from detectors.cusum import Cusum
from detectors.ratio import ErrorRatio
from detectors.server import ServerAnomaly
from detectors.volume import VolumeBaseline
from outagewatch.evaluate.detect_csv import GENERAL


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[int], Any]
    draw: Callable[[np.random.Generator, int], tuple[Any, ...]]
    warmup: int


def _volume(rng: np.random.Generator, i: int) -> tuple[Any, ...]:
    return (float(rng.poisson(40) + (400 if i % 37 == 36 else 0)), 1_795_323_600_000 + 10_000 * i)


def _ratio(rng: np.random.Generator, i: int) -> tuple[Any, ...]:
    listeners = float(rng.integers(500, 5000))
    rate = 0.3 if i % 37 == 36 else 0.01
    return (float(rng.binomial(int(listeners), rate)), listeners)


def _cusum(rng: np.random.Generator, i: int) -> tuple[Any, ...]:
    return (float(rng.normal(10, 1) + (0.05 * (i - 60) if i > 60 else 0.0)),)


def _audience(rng: np.random.Generator, i: int) -> tuple[Any, ...]:
    # (listeners, joins, leaves): 900 people, a third heartbeating per window; now and then they go dark.
    return (0.0 if i % 37 == 36 else float(rng.poisson(300)), float(rng.poisson(3)), float(rng.poisson(3)))


def _server(rng: np.random.Generator, i: int) -> tuple[Any, ...]:
    cpu = rng.normal(0.4, 0.04)
    broken = i % 37 == 36
    return ({"cpu": float(cpu), "latency_ms": float((80 + 100 * cpu) * (8 if broken else 1)),
             "errors": float(rng.poisson(2) + (200 if broken else 0))},)


CASES = [
    Case("volume", lambda seed: VolumeBaseline(warmup=12), _volume, 12),
    # The same class as detect-csv runs it on a series in general (outagewatch.evaluate.detect_csv.GENERAL).
    Case("volume_series", lambda seed: VolumeBaseline(**GENERAL.as_kwargs()), _volume, 12),
    Case("ratio", lambda seed: ErrorRatio(warmup=3), _ratio, 3),
    Case("cusum", lambda seed: Cusum(warmup=30), _cusum, 30),
    Case("audience", lambda seed: Audience(warmup=6), _audience, 6),
    Case("server", lambda seed: ServerAnomaly(min_train=20, retrain_every=25, window=60, n_estimators=20, seed=seed),
         _server, 20),
]
IDS = [case.name for case in CASES]


def _run(detector: Any, case: Case, seed: int, count: int) -> list[float]:
    rng = np.random.default_rng(seed)
    scores = []
    for i in range(count):
        x = case.draw(rng, i)
        scores.append(detector.score_one(*x))
        detector.learn_one(*x)
    return scores


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scores_before_learning_are_neutral(case: Case) -> None:
    detector = case.build(0)
    assert detector.score_one(*case.draw(np.random.default_rng(0), 0)) == 0.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_neutral_during_warmup_then_scores(case: Case) -> None:
    scores = _run(case.build(0), case, seed=1, count=case.warmup + 80)
    assert scores[: case.warmup] == [0.0] * case.warmup
    assert max(scores[case.warmup:]) >= 0.5, "the planted anomalies must score past the alarm line"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scores_are_in_unit_interval_and_deterministic_with_a_seed(case: Case) -> None:
    first = _run(case.build(5), case, seed=3, count=150)
    second = _run(case.build(5), case, seed=3, count=150)
    assert first == second
    assert all(0.0 <= score <= 1.0 for score in first)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_score_one_changes_nothing(case: Case) -> None:
    detector = case.build(0)
    _run(detector, case, seed=2, count=case.warmup + 40)
    before = json.dumps(detector.to_state(), sort_keys=True)
    detector.score_one(*case.draw(np.random.default_rng(9), 36))
    assert json.dumps(detector.to_state(), sort_keys=True) == before


@pytest.mark.parametrize("learned", [0, 5, 70], ids=["fresh", "warming", "trained"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_round_trips_through_json(case: Case, learned: int) -> None:
    rng = np.random.default_rng(4)
    inputs = [case.draw(rng, i) for i in range(learned + 60)]
    original = case.build(7)
    for x in inputs[:learned]:
        original.learn_one(*x)
    restored = type(original).from_state(json.loads(json.dumps(original.to_state())))
    for x in inputs[learned:]:
        assert restored.score_one(*x) == original.score_one(*x)
        original.learn_one(*x)
        restored.learn_one(*copy.deepcopy(x))
    assert json.dumps(restored.to_state(), sort_keys=True) == json.dumps(original.to_state(), sort_keys=True)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hot_path_cost_is_printed(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    """Per-call cost, printed for the record; `outagewatch bench detectors` measures it properly."""
    detector = case.build(0)
    rng = np.random.default_rng(0)
    inputs = [case.draw(rng, i) for i in range(300)]
    started = time.perf_counter()
    for x in inputs:
        detector.score_one(*x)
        detector.learn_one(*x)
    micros = (time.perf_counter() - started) / len(inputs) * 1e6
    with capsys.disabled():
        print(f"\n[bench] {case.name}: {micros:.1f} us per score_one+learn_one (incl. training)")
    assert micros > 0
