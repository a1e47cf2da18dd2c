from __future__ import annotations

from typing import Any

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


SERIES: dict[str, Any] = {"half_life": 30.0, "direction": "both", "shift_after": 6, "calibrate": True, "counts": "auto"}


def _alarms(volume: VolumeBaseline, values: list[float]) -> list[int]:
    alarms = []
    for index, value in enumerate(values):
        if volume.score_one(value) >= 0.5:
            alarms.append(index)
        volume.learn_one(value)
    return alarms


def test_a_level_shift_is_news_once_then_the_baseline() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(100, 3, 400)) + list(rng.normal(160, 3, 400))
    series, room = VolumeBaseline(**SERIES), VolumeBaseline(direction="both", counts=False)
    series_alarms, room_alarms = _alarms(series, values), _alarms(room, values)
    assert series_alarms and all(400 <= index < 406 for index in series_alarms)
    assert abs(series.expected()[0] - 160) < 3
    # The room volume never restarts: an outage must not become its baseline, it keeps alarming.
    assert sum(index >= 400 for index in room_alarms) > 50


def test_run_of_outliers_shorter_than_shift_after_leaves_the_baseline() -> None:
    series = VolumeBaseline(**SERIES)
    for _ in range(200):
        series.learn_one(100.0 + (1.0 if _ % 2 else -1.0))
    for _ in range(5):
        series.learn_one(300.0)
    assert abs(series.expected()[0] - 100) < 10


def test_calibration_makes_a_heavy_tailed_series_alarm_as_rarely_as_a_smooth_one() -> None:
    rng = np.random.default_rng(11)
    smooth = list(rng.normal(100, 5, 6000))
    heavy = list(100 + 5 * rng.standard_t(2, 6000))
    raw = {name: len(_alarms(VolumeBaseline(**{**SERIES, "calibrate": False}), values))
           for name, values in (("smooth", smooth), ("heavy", heavy))}
    calibrated = {name: len(_alarms(VolumeBaseline(**SERIES), values))
                  for name, values in (("smooth", smooth), ("heavy", heavy))}
    assert raw["heavy"] > 10 * max(raw["smooth"], 1)
    assert calibrated["heavy"] <= 6
    assert calibrated["smooth"] <= 6


def test_calibrated_score_still_sees_a_value_past_anything_seen() -> None:
    rng = np.random.default_rng(2)
    series = VolumeBaseline(**SERIES)
    _alarms(series, list(100 + 5 * rng.standard_t(2, 3000)))
    assert series.score_one(100 + 5 * 400) > 0.6
    assert series.score_one(100 - 5 * 400) > 0.6  # both directions


def test_counts_auto_is_decided_by_the_warm_up() -> None:
    whole, fractional = VolumeBaseline(counts="auto", warmup=5), VolumeBaseline(counts="auto", warmup=5)
    for value in (3.0, 0.0, 4.0, 2.0, 5.0):
        whole.learn_one(value)
    for value in (0.066, 0.068, 0.134, 0.066, 0.07):
        fractional.learn_one(value)
    assert whole.counts is True and fractional.counts is False


def test_room_state_keeps_its_keys_and_a_state_without_the_series_keys_restores() -> None:
    """The room volume writes the keys it wrote before; a state saved before them restores unchanged."""
    room = VolumeBaseline(warmup=12, half_life=90.0, z_alarm=4.0)
    for index in range(100):
        room.learn_one(float(index % 7), START + 10_000 * index)
    state = room.to_state()
    assert set(state) == {"params", "n", "warm", "level", "scale", "season"}
    assert set(state["params"]).isdisjoint({"shift_after", "calibrate", "rarity_alarm", "tail_prior"})
    restored = VolumeBaseline.from_state(state)
    assert restored.to_state() == state
    assert restored.score_one(30.0, START) == room.score_one(30.0, START)
