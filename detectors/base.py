"""What every detector shares: the protocol, score squashing, robust statistics.

Every detector follows river's shape: ``learn_one`` updates the model,
``score_one`` judges a value without changing anything, a high score means
anomalous. Scores here are in [0, 1] with one convention: **0.5 is the
detector's own alarm threshold** (``score >= 0.5`` means "past it"), 0 is
neutral, so the ensemble can threshold every detector the same way.

>>> squash(4.0, 4.0), squash(0.0, 4.0), squash(-3.0, 4.0)
(0.5, 0.0, 0.0)
>>> median([3.0, 1.0, 2.0, 100.0]), mad([1.0, 2.0, 3.0, 100.0])
(2.5, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, Self

# 1.4826 * MAD estimates the standard deviation of normal data.
MAD_TO_SIGMA = 1.4826

# (lower, upper): the values a detector takes as normal; the dashboards draw it around the observed series.
Band = tuple[float, float]


class Detector(Protocol):
    """The shape the conformance suite checks (arguments differ per detector)."""

    def learn_one(self, *args: Any) -> None: ...

    def score_one(self, *args: Any) -> float: ...

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...


def squash(evidence: float, alarm: float) -> float:
    """Map evidence >= 0 (a z-score, a CUSUM sum...) into [0, 1), 0.5 at ``alarm``."""
    if not evidence > 0.0:  # also catches NaN
        return 0.0
    if math.isinf(evidence):
        return 1.0
    return evidence / (evidence + alarm)


def poisson_deviance(observed: float, expected: float) -> float:
    """``D`` of the Chernoff bound ``exp(-D)`` on a Poisson(``expected``) count as far out as ``observed``.

    Above ``expected`` it bounds ``P(X >= observed)``, below it ``P(X <= observed)``.

    >>> round(poisson_deviance(0.0, 10.0), 2), round(poisson_deviance(5.0, 10.0), 2), round(poisson_deviance(20.0, 10.0), 2)
    (10.0, 1.53, 3.86)
    """
    if observed <= 0.0:
        return expected
    return expected - observed + observed * math.log(observed / expected)


def poisson_tail(observed: float, expected: float) -> float:
    """``P(X >= observed)`` for X ~ Poisson(``expected``), exact: the chance of a count this high at normal.

    Counts are rounded (a distinct count from a sketch is near a whole
    number); a count at or below ``expected`` is no tail at all (1). The
    Chernoff bound ``exp(-poisson_deviance)`` is 6 times too high at 7
    against 0.96, which is where a small key's page is decided.

    >>> f"{poisson_tail(7.0, 0.96):.2e}", f"{poisson_tail(9.0, 0.96):.2e}", poisson_tail(1.0, 3.0)
    ('6.47e-05', '8.08e-07', 1.0)
    >>> poisson_tail(5.0, 0.0), poisson_tail(2_000.0, 1_000.0) < 1e-100
    (0.0, True)
    """
    k = round(observed)
    if k <= expected:
        return 1.0
    if expected <= 0.0:
        return 0.0
    # Sum the pmf upward from k: past the mean each term is the last times expected / (j + 1) < 1.
    log_term = -expected + k * math.log(expected) - math.lgamma(k + 1)
    if log_term < -745.0:  # below the smallest double: the tail is too (terms fall from here)
        return 0.0
    term = math.exp(log_term)
    total, j = 0.0, k
    while term > total * 1e-12:
        total += term
        j += 1
        term *= expected / j
    return min(total, 1.0)


def half_life_alpha(half_life: float) -> float:
    """Weight of the newest value in an exponential average with this half-life (in updates)."""
    if half_life <= 0:
        raise ValueError(f"half_life must be > 0, got {half_life}")
    return 1.0 - float(0.5 ** (1.0 / half_life))


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median."""
    centre = median(values)
    return median([abs(value - centre) for value in values])


def clipped_square_consistency(c: float) -> float:
    """E[min(Z^2, c^2)] for a standard normal Z.

    Dividing a running mean of clipped squared residuals by this keeps the
    scale estimate unbiased for normal noise while outliers move it little.
    """
    phi = math.exp(-c * c / 2.0) / math.sqrt(2.0 * math.pi)
    tail = 0.5 * math.erfc(c / math.sqrt(2.0))
    return (1.0 - 2.0 * tail) - 2.0 * c * phi + 2.0 * c * c * tail

