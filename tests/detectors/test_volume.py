from __future__ import annotations

import numpy as np

from detectors.volume import VolumeBaseline

START = 1_795_323_600_000
HOUR = 3_600_000


def test_spike_scores_past_the_alarm_and_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    volume = VolumeBaseline()
    for count in rng.poisson(30, 200):
        volume.learn_one(float(count))
    noise = [volume.score_one(float(c)) for c in rng.poisson(30, 500)]
    assert max(noise) < 0.5
    assert volume.score_one(150.0) > 0.6


def test_min_volume_keeps_tiny_series_quiet() -> None:
    volume = VolumeBaseline(warmup=5, min_volume=10)
    for _ in range(20):
        volume.learn_one(0.0)
    assert volume.score_one(8.0) == 0.0
    assert volume.score_one(12.0) >= 0.5


def test_poisson_floor_makes_small_counts_need_more_evidence() -> None:
    volume = VolumeBaseline(warmup=5)
    for _ in range(30):
        volume.learn_one(1.0)  # constant: MAD 0, only the Poisson floor stops infinite z
    assert volume.score_one(3.0) < 0.3
    assert volume.score_one(30.0) > 0.5


def test_a_spike_barely_moves_the_baseline_but_a_new_level_is_absorbed() -> None:
    volume = VolumeBaseline(warmup=10, half_life=30)
    for _ in range(50):
        volume.learn_one(100.0)
    for _ in range(3):
        volume.learn_one(1000.0)
    assert volume.expected()[0] < 110
    for _ in range(600):
        volume.learn_one(1000.0)
    assert volume.score_one(1000.0) < 0.5


def test_time_of_day_baseline_silences_the_daily_peak() -> None:
    """Every evening hour the volume triples; after two days that is expected, not a spike."""
    def series(volume: VolumeBaseline, days: int) -> list[float]:
        scores = []
        for minute in range(days * 24 * 60):
            ts = START + minute * 60_000
            value = 300.0 if (ts // HOUR) % 24 == 20 else 100.0
            scores.append(volume.score_one(value, ts))
            volume.learn_one(value, ts)
        return scores

    seasonal = VolumeBaseline(half_life=30, season_min_days=2)
    flat = VolumeBaseline(half_life=30, season_min_days=0)
    day = 24 * 60
    peak_start = next(m for m in range(day) if ((START + m * 60_000) // HOUR) % 24 == 20)
    seasonal_scores, flat_scores = series(seasonal, 3), series(flat, 3)
    on_day_three = 2 * day + peak_start
    assert flat_scores[on_day_three] >= 0.5
    assert seasonal_scores[on_day_three] < 0.5
    assert seasonal_scores[peak_start] >= 0.5  # the first evening it is news


def test_direction_both_scores_drops() -> None:
    up, both = VolumeBaseline(warmup=5), VolumeBaseline(warmup=5, direction="both")
    for _ in range(30):
        up.learn_one(500.0)
        both.learn_one(500.0)
    assert up.score_one(20.0) == 0.0
    assert both.score_one(20.0) >= 0.5


def test_non_finite_values_are_ignored() -> None:
    volume = VolumeBaseline(warmup=2)
    volume.learn_one(float("nan"))
    assert volume.n == 0
    assert volume.score_one(float("inf")) == 0.0


def test_band_is_none_in_warm_up_then_its_upper_edge_is_where_a_count_alarms() -> None:
    rng = np.random.default_rng(3)
    volume = VolumeBaseline(warmup=12)
    for count in rng.poisson(30, 11):
        volume.learn_one(float(count))
    assert volume.band() is None
    for count in rng.poisson(30, 100):
        volume.learn_one(float(count))
    band = volume.band()
    assert band is not None
    lower, upper = band
    assert lower < volume.expected()[0] < upper
    assert volume.score_one(upper - 1e-6) < 0.5 <= volume.score_one(upper + 1e-6)
    floored = VolumeBaseline.from_state({**volume.to_state(), "params": {**volume.to_state()["params"],
                                                                          "min_volume": 500.0}})
    assert floored.band() == (lower, 500.0)  # nothing below min_volume alarms
