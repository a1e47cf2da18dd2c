"""Error ratio (errors / listeners) against the key's learned normal ratio.

The normal ratio is a Beta-binomial posterior: a prior of ``prior_weight``
pseudo-listeners at ``prior_ratio``, then the counts of every learned window,
decayed with ``half_life`` so the baseline follows the room. A window is
judged by how far the **lower** Wilson bound of its observed ratio lies above
the **upper** Wilson bound of the baseline (both at ``z`` standard errors):
the lift only counts what the data proves. 3 errors among 5 listeners proves
little (lower bound ~14%), 30k among 700k proves the ratio is 4.3% almost
exactly; each is compared with what is normal for that room. Huge rooms get
no free alarms from significance alone: the lift must also be large
(``alarm_lift`` scores 0.5), and baselines below ``min_ratio`` count as
``min_ratio``.

``errors`` should be distinct error clients, not raw error reports, so one
client spamming errors counts once. A window where more clients erred than
listened (failed joins are not listeners) counts the errors as the trials.

Parameters
----------
prior_ratio, prior_weight
    The ratio assumed before any data, and how many listeners it is worth.
half_life
    Half-life of the learned counts, in windows.
z
    Standard errors for both Wilson bounds (3 is about 99.9% one-sided).
alarm_lift
    Proven lift over the baseline that scores 0.5.
min_ratio
    Floor on the baseline ratio, so a near-zero baseline cannot make any
    handful of errors look like a big lift.
warmup
    Windows learned before scoring.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> ratio = ErrorRatio(warmup=5)
>>> for _ in range(50):
...     ratio.learn_one(float(rng.binomial(2000, 0.01)), 2000.0)
>>> round(ratio.baseline_ratio, 4)
0.0099
>>> round(ratio.score_one(3, 5), 3), round(ratio.score_one(30_000, 700_000), 3)
(0.921, 0.742)
>>> round(ratio.score_one(25, 2000), 3)
0.0
>>> [round(edge, 4) for edge in ratio.band()]
[0.009, 0.0218]

References
----------
- E. B. Wilson (1927), Probable inference, the law of succession, and
  statistical inference, JASA 22(158).
- L. D. Brown, T. T. Cai, A. DasGupta (2001), Interval estimation for a
  binomial proportion, Statistical Science 16(2).
"""

from __future__ import annotations

import math
from typing import Any, Self

from detectors.base import Band, half_life_alpha, squash

PARAMS = ("prior_ratio", "prior_weight", "half_life", "z", "alarm_lift", "min_ratio", "warmup")


def wilson_bounds(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``(0, 1)`` when there are no trials).

    >>> [round(b, 3) for b in wilson_bounds(3, 5, 3.0)]
    [0.138, 0.934]
    """
    if trials <= 0:
        return 0.0, 1.0
    p = min(max(successes / trials, 0.0), 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = p + z2 / (2.0 * trials)
    spread = z * math.sqrt(p * (1.0 - p) / trials + z2 / (4.0 * trials * trials))
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


class ErrorRatio:
    def __init__(
        self,
        prior_ratio: float = 0.01,
        prior_weight: float = 100.0,
        half_life: float = 360.0,
        z: float = 3.0,
        alarm_lift: float = 2.0,
        min_ratio: float = 0.002,
        warmup: int = 3,
    ) -> None:
        if not 0.0 < prior_ratio < 1.0:
            raise ValueError(f"prior_ratio must be in (0, 1), got {prior_ratio}")
        if alarm_lift <= 1.0:
            raise ValueError(f"alarm_lift must be > 1, got {alarm_lift}")
        self.prior_ratio = prior_ratio
        self.prior_weight = prior_weight
        self.half_life = half_life
        self.z = z
        self.alarm_lift = alarm_lift
        self.min_ratio = min_ratio
        self.warmup = warmup
        self._decay = 1.0 - half_life_alpha(half_life)
        self.n = 0
        self.errors = prior_ratio * prior_weight
        self.trials = prior_weight

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    @property
    def baseline_ratio(self) -> float:
        return self.errors / self.trials

    def baseline_upper(self) -> float:
        return max(wilson_bounds(self.errors, self.trials, self.z)[1], self.min_ratio)

    def band(self) -> Band | None:
        """The baseline ratio's lower bound, and ``alarm_lift`` times its upper bound (``None`` in warm-up).

        A window alarms when the lower bound of its own ratio passes the upper
        edge, so with few listeners the observed ratio must go a little higher.
        """
        if not self.ready:
            return None
        return wilson_bounds(self.errors, self.trials, self.z)[0], self.alarm_lift * self.baseline_upper()

    def lift(self, errors: float, listeners: float) -> float:
        """Lower bound of the observed ratio over the upper bound of the baseline."""
        trials = max(listeners, errors)
        if trials <= 0:
            return 0.0
        return wilson_bounds(errors, trials, self.z)[0] / self.baseline_upper()

    def learn_one(self, errors: float, listeners: float, weight: float = 1.0) -> None:
        """Learn one window; ``weight`` < 1 learns a suspicious window only partly."""
        if not (math.isfinite(errors) and math.isfinite(listeners)) or errors < 0 or listeners < 0:
            return
        errors, listeners = float(errors), float(listeners)
        self.n += 1
        trials = max(listeners, errors)
        self.errors = self._decay * self.errors + weight * errors
        self.trials = self._decay * self.trials + weight * trials
        # The prior never decays away entirely: it keeps an empty room's ratio defined.
        floor = self.prior_weight * 0.01
        if self.trials < floor:
            self.errors += self.prior_ratio * (floor - self.trials)
            self.trials = floor

    def score_one(self, errors: float, listeners: float) -> float:
        if not self.ready or not (math.isfinite(errors) and math.isfinite(listeners)):
            return 0.0
        return squash(self.lift(float(errors), float(listeners)) - 1.0, self.alarm_lift - 1.0)

    def to_state(self) -> dict[str, Any]:
        return {"params": {name: getattr(self, name) for name in PARAMS},
                "n": self.n, "errors": self.errors, "trials": self.trials}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(**state["params"])
        detector.n = int(state["n"])
        detector.errors = float(state["errors"])
        detector.trials = float(state["trials"])
        return detector
