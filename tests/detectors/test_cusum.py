from __future__ import annotations

import numpy as np
import pytest

from detectors.cusum import Cusum


def _first_alarm(series: list[float], detector: Cusum) -> int | None:
    for index, value in enumerate(series):
        score = detector.score_one(value)
        detector.learn_one(value)
        if score >= 0.5:
            return index
    return None


def test_stationary_noise_rarely_alarms() -> None:
    """With h=10, k=0.5 the in-control run length is tens of thousands of windows (days at 10 s)."""
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        alarms += _first_alarm([float(v) for v in rng.normal(5, 1, 2000)], Cusum()) is not None
    assert alarms <= 2


def test_slow_degradation_alarms_before_a_threshold_detector_would() -> None:
    rng = np.random.default_rng(1)
    steady = [float(v) for v in rng.normal(10, 1, 100)]
    creeping = [float(v) + 0.02 * step for step, v in enumerate(rng.normal(10, 1, 400), start=1)]
    alarm = _first_alarm(steady + creeping, Cusum())
    assert alarm is not None and alarm >= 100
    # Alarmed while the drift was still under two standard deviations: a z > 4 rule would not have fired yet.
    assert 0.02 * (alarm - 100) < 2.0


def test_down_direction_and_reset() -> None:
    detector = Cusum(warmup=10, direction="down")
    for _ in range(10):
        detector.learn_one(100.0)
    for _ in range(20):
        detector.learn_one(50.0)
    assert detector.score_one(50.0) >= 0.5
    detector.reset()
    assert detector.total == 0.0


def test_band_upper_edge_is_where_a_value_adds_to_the_sum() -> None:
    rng = np.random.default_rng(5)
    detector = Cusum(warmup=20)
    for value in rng.normal(10, 1, 20):
        detector.learn_one(float(value))  # warm-up only: the reference is set, the sum is still 0
    lower, upper = detector.band()
    assert lower < detector.mean < upper
    assert upper - detector.mean == pytest.approx(detector.mean - lower) == detector.k * detector.deviation()
    step = 1e-6 * detector.deviation()
    assert detector.score_one(upper - step) == 0.0 < detector.score_one(upper + step)


def test_a_value_counts_no_more_deviations_than_its_own_noise_allows() -> None:
    rng = np.random.default_rng(5)
    cusum = Cusum(warmup=20, rel_floor=0.0)
    for value in rng.normal(0.005, 0.0005, 200):  # a ratio over thousands of listeners: precise
        cusum.learn_one(float(value))
    # 5 error clients over 79 listeners: 100 deviations of the precise series, 7 of its own binomial noise.
    noise = (0.005 * 0.995 / 79) ** 0.5
    assert cusum.score_one(5 / 79) > 0.9
    assert cusum.score_one(5 / 79, noise) < 0.5
    before, mean = cusum.total, cusum.mean
    cusum.learn_one(5 / 79, noise)
    assert cusum.total - before == pytest.approx((5 / 79 - mean) / noise - cusum.k)
