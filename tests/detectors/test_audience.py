"""The expected audience: silent drops page, explained or gradual ones do not."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.audience import Audience, poisson_drop_deviance


def steady(audience: Audience, rng: np.random.Generator, people: float, windows: int = 60) -> None:
    """Windows of ``people`` listeners, a third of them heartbeating in each."""
    for _ in range(windows):
        audience.learn_one(float(rng.poisson(people * audience.share)))


def scores(audience: Audience, windows: list[tuple[float, float, float]]) -> list[float]:
    out = []
    for listeners, joins, leaves in windows:
        out.append(audience.score_one(listeners, joins, leaves))
        audience.learn_one(listeners, joins, leaves)
    return out


def test_neutral_in_warmup_and_with_nothing_expected() -> None:
    audience = Audience(warmup=6)
    assert scores(audience, [(100.0, 0.0, 0.0)] * 6) == [0.0] * 6
    empty = Audience(warmup=1)
    empty.learn_one(0.0)
    assert empty.score_one(0.0) == 0.0


@pytest.mark.parametrize("people", [60, 600, 60_000])
def test_a_key_gone_dark_pages_within_three_windows(people: int) -> None:
    audience = Audience()
    steady(audience, np.random.default_rng(people), people)
    judged = scores(audience, [(0.0, 0.0, 0.0)] * 3)
    assert judged[-1] >= 0.5, judged


def test_half_the_listeners_crashing_pages_by_the_third_window() -> None:
    audience = Audience()
    steady(audience, np.random.default_rng(1), 3000)
    judged = scores(audience, [(500.0, 0.0, 0.0)] * 3)
    assert max(judged[:1]) < 0.5 <= judged[2], judged


def test_a_small_drop_or_a_short_dip_stays_quiet() -> None:
    audience = Audience()
    rng = np.random.default_rng(2)
    steady(audience, rng, 3000)
    # a fifth missing for a minute: below the drop alarm
    assert max(scores(audience, [(800.0, 0.0, 0.0)] * 6)) < 0.5
    steady(audience, rng, 3000)
    # one window half short (a few heavy heartbeats arriving late), then back
    assert max(scores(audience, [(500.0, 0.0, 0.0), (1000.0, 0.0, 0.0), (1000.0, 0.0, 0.0)])) < 0.5


def test_a_room_that_ends_is_explained_by_its_leaves() -> None:
    audience = Audience()
    steady(audience, np.random.default_rng(3), 900)
    # everyone leaves in one window, then nothing: the leaves say why
    assert max(scores(audience, [(100.0, 0.0, 900.0)] + [(0.0, 0.0, 0.0)] * 30)) < 0.5


def test_who_leaves_in_the_warm_up_is_gone_from_what_it_learns() -> None:
    # A new region's first minute: 200 heartbeats (600 people), 500 of whom leave in the third window (one
    # heavy sampled listener), then the 100 left heartbeat on. The level is the 100, not the minute's mean.
    audience = Audience(warmup=6)
    warm = [(200.0, 0.0, 0.0), (200.0, 0.0, 0.0), (200.0, 0.0, 500.0), (34.0, 0.0, 0.0), (34.0, 0.0, 0.0),
            (34.0, 0.0, 0.0)]
    assert max(scores(audience, warm + [(34.0, 0.0, 0.0)] * 30)) < 0.5
    assert audience.expected() == pytest.approx(100, rel=0.05)
    # Joiners in the warm-up count for the windows before them too: a room filling up is not a drop.
    filling = Audience(warmup=6)
    scores(filling, [(20.0 * (n - 1) / 3 + 20.0, 20.0, 0.0) for n in range(1, 7)])  # 20, 40, ... 120 people
    assert filling.expected() == pytest.approx(120)


def test_an_evening_decline_with_its_leaves_and_a_surge_stay_quiet() -> None:
    audience = Audience()
    rng = np.random.default_rng(4)
    steady(audience, rng, 6000)
    people, windows = 6000.0, []
    for _ in range(240):  # 40 minutes, losing 60 %: each window some leave, fewer heartbeat
        leaving = people * 0.0038
        people -= leaving
        windows.append((float(rng.poisson(people / 3)), 0.0, leaving))
    assert max(scores(audience, windows)) < 0.5
    surge = [(float(rng.poisson(people * (1 + i / 10) / 3)), people / 30, 0.0) for i in range(60)]
    assert max(scores(audience, surge)) < 0.5


def test_a_tiny_room_never_pages_on_its_counting_noise() -> None:
    audience = Audience()
    rng = np.random.default_rng(5)
    # 6 people, each heartbeating once in 30 s at a phase of its own: windows count 0 to 6
    judged = []
    for _ in range(2000):
        listeners = float(rng.binomial(6, 1 / 3))
        judged.append(audience.score_one(listeners))
        audience.learn_one(listeners)
    assert max(judged) < 0.5


def test_the_collapse_is_not_learned_as_normal_within_minutes() -> None:
    audience = Audience()
    steady(audience, np.random.default_rng(6), 3000)
    judged = scores(audience, [(100.0, 0.0, 0.0)] * 36)  # six minutes at a tenth
    assert min(judged[2:]) >= 0.5, judged


def test_poisson_drop_deviance_bounds_the_lower_tail() -> None:
    # exp(-D) is a bound on P(X <= k) for X ~ Poisson(mu), tight to a small factor
    from math import exp, factorial

    for mu, k in [(10.0, 2), (50.0, 30), (5.0, 0)]:
        tail = sum(exp(-mu) * mu**i / factorial(i) for i in range(k + 1))
        bound = exp(-poisson_drop_deviance(float(k), mu))
        assert tail <= bound <= 20 * tail


def test_error_reporters_hold_the_audience_up_but_never_raise_it() -> None:
    """Clients reporting errors every window are there, but counted whole: an error flood that ends is no drop."""
    audience = Audience()
    rng = np.random.default_rng(3)
    steady(audience, rng, 90_000)
    level = audience.level
    for _ in range(90):  # fifteen minutes of 60k error reporters among the same people, all still heartbeating
        heartbeats = float(rng.poisson(90_000 * audience.share))
        assert audience.score_one(heartbeats, reporting=60_000.0) < 0.25
        audience.learn_one(heartbeats, reporting=60_000.0)
    assert audience.level == pytest.approx(level, rel=0.03)
    after = [audience.score_one(float(rng.poisson(90_000 * audience.share)))]  # the errors stop
    assert after[0] < 0.25, after


def test_failing_clients_that_stop_heartbeating_but_report_errors_are_not_silent() -> None:
    audience = Audience()
    steady(audience, np.random.default_rng(4), 900)
    # Two thirds stop heartbeating and report an error every window instead.
    judged = scores_reporting(audience, [(100.0, 600.0)] * 6)
    assert max(judged) < 0.25, judged
    # ... and when they go quiet too, the drop pages.
    assert scores_reporting(audience, [(100.0, 0.0)] * 3)[-1] >= 0.5


def scores_reporting(audience: Audience, windows: list[tuple[float, float]]) -> list[float]:
    out = []
    for listeners, reporting in windows:
        out.append(audience.score_one(listeners, reporting=reporting))
        audience.learn_one(listeners, reporting=reporting)
    return out
