from __future__ import annotations

import numpy as np
import pytest

from detectors.ratio import ErrorRatio, wilson_bounds


def _trained(ratio: float, listeners: int, windows: int = 60, seed: int = 0) -> ErrorRatio:
    rng = np.random.default_rng(seed)
    detector = ErrorRatio()
    for _ in range(windows):
        detector.learn_one(float(rng.binomial(listeners, ratio)), float(listeners))
    return detector


def test_wilson_bounds_contain_the_ratio_and_narrow_with_data() -> None:
    small = wilson_bounds(3, 5, 3.0)
    huge = wilson_bounds(30_000, 700_000, 3.0)
    assert small[0] < 0.6 < small[1]
    assert huge[0] < 30_000 / 700_000 < huge[1]
    assert huge[1] - huge[0] < 0.002 < small[1] - small[0]
    assert wilson_bounds(0, 0, 3.0) == (0.0, 1.0)


def test_small_and_huge_rooms_are_judged_against_their_normal() -> None:
    usual_one_percent = _trained(0.01, 2000)
    assert usual_one_percent.score_one(3, 5) >= 0.5  # lower bound ~14% vs ~1%
    assert usual_one_percent.score_one(30_000, 700_000) >= 0.5  # 4.3% proven vs ~1%
    usual_four_percent = _trained(0.042, 700_000)
    assert usual_four_percent.score_one(30_000, 700_000) < 0.5  # 4.3% is normal here
    assert usual_one_percent.score_one(1, 5) < 0.5  # 1 of 5 proves nothing


def test_normal_windows_score_below_the_alarm() -> None:
    rng = np.random.default_rng(1)
    detector = _trained(0.01, 3000)
    scores = [detector.score_one(float(rng.binomial(3000, 0.01)), 3000.0) for _ in range(1000)]
    assert max(scores) < 0.5


def test_more_errors_than_listeners_counts_errors_as_trials() -> None:
    detector = _trained(0.01, 1000)
    assert detector.lift(50, 0) > 10  # everyone failed to join: ratio 1


def test_partial_learning_keeps_an_incident_out_of_the_baseline() -> None:
    full, partial = _trained(0.01, 1000), _trained(0.01, 1000)
    for _ in range(30):
        full.learn_one(300, 1000)
        partial.learn_one(300, 1000, weight=0.05)
    assert partial.baseline_ratio < 0.03 < full.baseline_ratio


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="alarm_lift"):
        ErrorRatio(alarm_lift=1.0)
    with pytest.raises(ValueError, match="prior_ratio"):
        ErrorRatio(prior_ratio=0.0)


def test_band_is_none_in_warm_up_then_brackets_the_baseline_up_to_the_alarm() -> None:
    assert ErrorRatio().band() is None
    detector = _trained(0.01, 2000)
    band = detector.band()
    assert band is not None
    lower, upper = band
    assert lower < detector.baseline_ratio < upper / detector.alarm_lift
    # With a huge room the observed ratio's lower bound is the ratio: the upper edge is where it alarms.
    listeners = 1e9
    assert detector.score_one(upper * 0.999 * listeners, listeners) < 0.5 <= detector.score_one(
        upper * 1.001 * listeners, listeners)
