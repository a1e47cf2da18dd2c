"""CUSUM change detection: sustained shifts and slow degradations.

Page's cumulative sum adds up, window after window, how far each value lies
above the reference mean (in standard deviations, minus the slack ``k``) and
never lets the sum drop below zero. One odd window barely moves it; a shift of
one standard deviation kept for a few windows, or a slow creep the other
detectors' baselines would quietly absorb, crosses ``h``.

The reference (mean and deviation) starts from the trimmed mean and
deviation of the first ``warmup`` values and then follows the series slowly (``half_life``)
with each residual clipped at 2.5 deviations, so a shift drags it along far
more slowly than the sum grows, and an underestimated start does not leave
the sum wandering up forever.
The deviation is at least ``rel_floor`` of the mean, so a very stable series
(an error ratio in a room of 700k listeners) does not alarm on a change
nobody would care about. The score is ``S / (S + h)``: 0.5 at the alarm line.

Parameters
----------
warmup
    Values learned before scoring (the median/MAD start).
k
    Slack, in standard deviations: shifts smaller than this never accumulate.
h
    Alarm line for the cumulative sum, in standard deviations.
half_life
    Half-life of the reference while the sum is zero, in values.
rel_floor, abs_floor
    Floors on the standard deviation: a fraction of the mean, and absolute.
direction
    ``"up"`` (increases, e.g. an error ratio) or ``"down"``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> cusum = Cusum(warmup=20)
>>> series = [float(v) for v in rng.normal(10, 1, 40)] + [10 + 0.1 * step for step in range(1, 41)]
>>> scores = []
>>> for value in series:
...     scores.append(cusum.score_one(value))
...     cusum.learn_one(value)
>>> round(max(scores[:40]), 3), next(i for i, s in enumerate(scores) if s >= 0.5)
(0.23, 55)

References
----------
- E. S. Page (1954), Continuous inspection schemes, Biometrika 41.
- D. C. Montgomery, Introduction to Statistical Quality Control, ch. 9
  (tabular CUSUM, choice of k and h).
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from detectors.base import MAD_TO_SIGMA, Band, clipped_square_consistency, half_life_alpha, mad, median, squash

PARAMS = ("warmup", "k", "h", "half_life", "rel_floor", "abs_floor", "direction")
_HUBER_C = 2.5


def _warm_reference(values: list[float]) -> tuple[float, float]:
    """Mean and deviation to start from: those of the values within 3 MADs of the median.

    Trimming keeps a spike during warm-up out of both. The centre is the
    trimmed mean, not the median: an error ratio in a small room is 0 in most
    windows, and a median of 0 would leave every ordinary error above the
    reference, the sum wandering up on pure noise for hours. The deviation is
    the larger of the MAD estimate and the trimmed standard deviation (the MAD
    alone is noisy on a short warm-up, and an underestimate is what makes a
    CUSUM alarm on noise).

    >>> [round(v, 6) for v in _warm_reference([0.0] * 8 + [0.02, 0.02])]
    [0.004, 0.008433]
    """
    centre = median(values)
    robust = MAD_TO_SIGMA * mad(values)
    kept = [value for value in values if abs(value - centre) <= 3.0 * robust] if robust > 0 else values
    if len(kept) < 2:
        return centre, robust
    mean = sum(kept) / len(kept)
    spread = math.sqrt(sum((value - mean) ** 2 for value in kept) / (len(kept) - 1))
    return mean, max(robust, spread)


class Cusum:
    def __init__(
        self,
        warmup: int = 30,
        k: float = 0.5,
        h: float = 10.0,
        half_life: float = 720.0,
        rel_floor: float = 0.1,
        abs_floor: float = 1e-9,
        direction: Literal["up", "down"] = "up",
    ) -> None:
        if warmup < 2:
            raise ValueError(f"warmup must be >= 2, got {warmup}")
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        self.warmup = warmup
        self.k = k
        self.h = h
        self.half_life = half_life
        self.rel_floor = rel_floor
        self.abs_floor = abs_floor
        self.direction = direction
        self._alpha = half_life_alpha(half_life)
        self._kappa = clipped_square_consistency(_HUBER_C)
        self.n = 0
        self._warm: list[float] = []
        self.mean = 0.0
        self.std = 0.0
        self.total = 0.0

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    def deviation(self) -> float:
        return max(self.std, self.rel_floor * abs(self.mean), self.abs_floor)

    def band(self) -> Band:
        """The reference band: a value above the upper edge adds to the sum of an ``up`` CUSUM."""
        spread = self.k * self.deviation()
        return max(0.0, self.mean - spread), self.mean + spread

    def _next_total(self, x: float, noise: float) -> float:
        z = (x - self.mean) / max(self.deviation(), noise)
        if self.direction == "down":
            z = -z
        return max(0.0, self.total + z - self.k)

    def learn_one(self, x: float, noise: float = 0.0) -> None:
        """Learn ``x``; ``noise`` is its own standard error where known (see ``score_one``)."""
        x = float(x)
        if not math.isfinite(x):
            return
        self.n += 1
        if self.n <= self.warmup:
            self._warm.append(x)
            if self.n == self.warmup:
                self.mean, self.std = _warm_reference(self._warm)
                self._warm = []
            return
        self.total = self._next_total(x, noise)
        # The reference follows the series, but each value moves it by at most
        # huber_c deviations times alpha: a slow creep outruns it.
        limit = _HUBER_C * self.deviation()
        residual = max(-limit, min(limit, x - self.mean))
        self.mean += self._alpha * residual
        # The deviation learns faster than the mean: an underestimated one
        # (a short warm-up) is what lets a CUSUM wander up on pure noise.
        alpha = min(1.0, 4.0 * self._alpha)
        self.std = math.sqrt((1 - alpha) * self.std ** 2 + alpha * residual ** 2 / self._kappa)

    def score_one(self, x: float, noise: float = 0.0) -> float:
        """The score the sum would have after ``x`` (nothing is changed).

        ``noise``: the standard error of ``x`` itself, when it is known to be
        less precise than the series usually is, e.g. an error ratio over
        fewer listeners than the key had when it learned its deviation: a
        value counts at most ``(x - mean) / noise`` deviations. Without it, a
        version down to 79 listeners, with a deviation learned on thousands,
        took 5 error clients for a 100-deviation rise.
        """
        if not self.ready or not math.isfinite(x):
            return 0.0
        return squash(self._next_total(float(x), noise), self.h)

    def reset(self) -> None:
        """Forget the accumulated sum (after the shift was handled), keep the reference."""
        self.total = 0.0

    def to_state(self) -> dict[str, Any]:
        return {"params": {name: getattr(self, name) for name in PARAMS}, "n": self.n, "warm": list(self._warm),
                "mean": self.mean, "std": self.std, "total": self.total}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(**state["params"])
        detector.n = int(state["n"])
        detector._warm = [float(value) for value in state["warm"]]
        detector.mean = float(state["mean"])
        detector.std = float(state["std"])
        detector.total = float(state["total"])
        return detector
