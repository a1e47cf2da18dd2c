"""Report volume against a learned baseline: Downdetector's method.

The expected count of distinct reporting clients for one key is learned
online. Before ``warmup`` values the detector only collects them (score 0);
then it starts from their median and MAD and follows the series with a robust
exponential smoother (Gelper, Fried and Croux): each residual is clipped at
``huber_c`` scales before it moves the level or the scale, so a spike barely
teaches the baseline that spikes are normal, while a lasting new level is
absorbed over a few half-lives.

Once ``season_min_days`` days of history cover the current hour of the day
(with timestamps given), an hour-of-day baseline is kept as well and a value
must exceed **both** baselines: the evening peak a room sees every day is not
an outage.

The score is ``z / (z + z_alarm)`` for the excess ``z`` in scales, so 0.5
means ``z_alarm`` scales above the baseline. With ``counts`` (the default, the
values are client counts) the scale is at least the Poisson noise of the
level, measured on Anscombe's variance-stabilised scale, so 3 reports where 1
is usual is not a spike, and 300 where 100 is usual is. Values below
``min_volume`` score 0: a handful of reports in a tiny room never pages.

The same class judges a series in general (``outagewatch detect-csv``), where
three more things hold that a room's report volume must not do:

- ``direction="both"``: a drop is as anomalous as a rise.
- ``shift_after``: that many learned values in a row beyond the clip, on one
  side, are a new level, not a run of outliers; the baseline restarts at their
  median, so a level shift is news once instead of for several half-lives. A
  room's volume keeps 0: an outage must never become its baseline.
- ``calibrate``: the excess is scored by how rare it is in this series' own
  record of excesses (a histogram of them, one bin per quarter octave), shrunk
  towards the normal tail by ``tail_prior`` pseudo-values. ``-log10`` of that
  share scores 0.5 at ``rarity_alarm``. A series with heavy tails and a smooth
  one then alarm about equally often, which scales alone cannot promise.
- ``counts="auto"`` decides at the end of the warm-up: counts when every
  warm-up value is a whole number >= 0.

Parameters
----------
warmup
    Values learned before scoring (the median/MAD start).
half_life
    Half-life of the baseline, in learned values (windows).
z_alarm
    Excess, in scales above the baseline, that scores 0.5.
huber_c
    Residuals are clipped at this many scales when learning.
min_volume
    Values below this score 0.
counts
    The values are counts: use Poisson noise as a floor on the scale.
rel_floor
    The scale is at least this fraction of the level.
season_period_s, season_bucket_s, season_min_days
    Time-of-day baseline: period, bucket width, and the days of history a
    bucket needs before it is used (0 disables it).
direction
    ``"up"`` scores only excesses (reports); ``"both"`` scores drops as well.
shift_after
    Learned values in a row beyond the clip that restart the baseline (0 never).
calibrate, rarity_alarm, tail_prior
    Score by the series' own tail; ``-log10`` share that scores 0.5; weight of
    the normal tail, in values.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(42)
>>> volume = VolumeBaseline(warmup=10, min_volume=5)
>>> for count in rng.poisson(20, size=60):
...     volume.learn_one(float(count))
>>> round(volume.score_one(24.0), 3), round(volume.score_one(90.0), 3)
(0.137, 0.71)
>>> round(volume.expected()[0], 1)
21.0
>>> [round(edge, 1) for edge in volume.band()]  # a count of 43.5 or more alarms
[5.2, 43.5]

A general series: it drops to a new level, which alarms once and is then the
baseline.

>>> series = VolumeBaseline(half_life=30, direction="both", shift_after=6, calibrate=True)
>>> scores = []
>>> for value in list(rng.normal(50, 2, size=300)) + list(rng.normal(20, 2, size=40)):
...     scores.append(series.score_one(value))
...     series.learn_one(value)
>>> [index for index, score in enumerate(scores) if score >= 0.5]
[300, 301]
>>> round(series.expected()[0], 1)
20.5

References
----------
- Downdetector, "Methodology": reports compared with the typical volume for
  that time of day, https://downdetector.com/methodology/
- S. Gelper, R. Fried, C. Croux (2010), Robust forecasting with exponential
  and Holt-Winters smoothing, Journal of Forecasting 29(3).
- F. J. Anscombe (1948), The transformation of Poisson, binomial and
  negative-binomial data, Biometrika 35.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from detectors.base import MAD_TO_SIGMA, Band, clipped_square_consistency, half_life_alpha, mad, median, squash

PARAMS = ("warmup", "half_life", "z_alarm", "huber_c", "min_volume", "counts", "rel_floor",
          "season_period_s", "season_bucket_s", "season_min_days", "direction")
# Saved only when set: a room's volume never uses them, and its state is one changelog message per key.
SERIES_PARAMS = {"shift_after": 0, "calibrate": False, "rarity_alarm": 4.0, "tail_prior": 100.0}


def _tail_bin(z: float) -> int:
    """Histogram bin of an excess: 0 below half a scale, then one bin per quarter-octave."""
    if not z > 0.5:
        return 0
    if math.isinf(z):
        return 200
    return min(200, 1 + int(4.0 * math.log2(z / 0.5)))


class VolumeBaseline:
    def __init__(
        self,
        warmup: int = 12,
        half_life: float = 90.0,
        z_alarm: float = 4.0,
        huber_c: float = 2.5,
        min_volume: float = 0.0,
        counts: bool | Literal["auto"] = True,
        rel_floor: float = 0.05,
        season_period_s: int = 86_400,
        season_bucket_s: int = 3_600,
        season_min_days: int = 2,
        direction: Literal["up", "both"] = "up",
        shift_after: int = 0,
        calibrate: bool = False,
        rarity_alarm: float = 4.0,
        tail_prior: float = 100.0,
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        if direction not in ("up", "both"):
            raise ValueError(f"direction must be 'up' or 'both', got {direction!r}")
        self.warmup = warmup
        self.half_life = half_life
        self.z_alarm = z_alarm
        self.huber_c = huber_c
        self.min_volume = min_volume
        self.counts = counts
        self.rel_floor = rel_floor
        self.season_period_s = season_period_s
        self.season_bucket_s = season_bucket_s
        self.season_min_days = season_min_days
        self.direction = direction
        self.shift_after = shift_after
        self.calibrate = calibrate
        self.rarity_alarm = rarity_alarm
        self.tail_prior = tail_prior
        self._alpha = half_life_alpha(half_life)
        self._kappa = clipped_square_consistency(huber_c)
        self.n = 0
        self._warm: list[float] = []
        self.level = 0.0
        self.scale = 0.0
        # bucket -> [level, scale, days seen, last day]
        self._season: dict[int, list[float]] = {}
        # Consecutive learned values beyond the clip on one side: the evidence of a level shift.
        self._run: list[float] = []
        # Learned excesses binned by _tail_bin: how often this key's own residuals got that far.
        self._tail: list[float] = []
        self._tail_n = 0.0

    @property
    def ready(self) -> bool:
        return self.n >= self.warmup

    def _floor(self, level: float) -> float:
        return max(self.rel_floor * abs(level), 1e-9)

    def _season_slot(self, ts_ms: int | None) -> tuple[int, int] | None:
        if ts_ms is None or self.season_min_days <= 0:
            return None
        seconds = ts_ms // 1000
        return (seconds % self.season_period_s) // self.season_bucket_s, seconds // self.season_period_s

    def _excess(self, value: float, level: float, scale: float) -> float:
        """Scales between value and level (signed), the more conservative of the two noise models."""
        z = (value - level) / max(scale, self._floor(level))
        if self.counts:
            # Anscombe: 2*sqrt(x + 3/8) has unit variance for Poisson counts.
            poisson_z = 2.0 * (math.sqrt(max(value, 0.0) + 0.375) - math.sqrt(max(level, 0.0) + 0.375))
            z = min(z, poisson_z) if z >= 0 else max(z, poisson_z)
        return z

    def _update(self, value: float, level: float, scale: float) -> tuple[float, float]:
        limit = self.huber_c * max(scale, self._floor(level))
        residual = max(-limit, min(limit, value - level))
        level += self._alpha * residual
        variance = (1.0 - self._alpha) * scale * scale + self._alpha * residual * residual / self._kappa
        return level, math.sqrt(variance)

    def learn_one(self, x: float, ts_ms: int | None = None) -> None:
        x = float(x)
        if not math.isfinite(x):
            return
        self.n += 1
        if self.n <= self.warmup:
            self._warm.append(x)
            if self.n == self.warmup:
                if self.counts == "auto":
                    self.counts = all(value >= 0.0 and value == int(value) for value in self._warm)
                self.level = median(self._warm)
                self.scale = MAD_TO_SIGMA * mad(self._warm)
                self._warm = []
            return
        if self.calibrate:
            z = self._z(x, ts_ms)
            if z > 0:
                index = _tail_bin(z)
                if index >= len(self._tail):
                    self._tail.extend([0.0] * (index + 1 - len(self._tail)))
                self._tail[index] += 1.0
            self._tail_n += 1.0
        if self.shift_after > 0 and self._shifted(x):
            return
        slot = self._season_slot(ts_ms)
        if slot is not None:
            bucket, day = slot
            season = self._season.get(bucket)
            if season is None:
                season = self._season[bucket] = [self.level, self.scale, 0.0, -1.0]
            if season[3] != day:
                season[2] += 1
                season[3] = float(day)
            season[0], season[1] = self._update(x, season[0], season[1])
        self.level, self.scale = self._update(x, self.level, self.scale)

    def _shifted(self, x: float) -> bool:
        """Track runs beyond the clip; after ``shift_after`` of them, restart the baseline at the new level."""
        limit = self.huber_c * max(self.scale, self._floor(self.level))
        side = 1.0 if x > self.level + limit else -1.0 if x < self.level - limit else 0.0
        if side == 0.0 or (self._run and (self._run[0] > self.level) != (side > 0)):
            self._run = []
        if side == 0.0:
            return False
        self._run.append(x)
        if len(self._run) < self.shift_after:
            return False
        self.level = median(self._run)
        self.scale = max(self.scale, MAD_TO_SIGMA * mad(self._run))
        self._season = {}
        self._run = []
        return True

    def expected(self, ts_ms: int | None = None) -> tuple[float, float]:
        """The baseline ``(level, scale)`` a value at ``ts_ms`` is judged against."""
        level, scale = self.level, max(self.scale, self._floor(self.level))
        slot = self._season_slot(ts_ms)
        season = self._season.get(slot[0]) if slot else None
        if season is not None and season[2] >= self.season_min_days:
            level, scale = max(level, season[0]), max(scale, season[1])
        return level, scale

    def band(self, ts_ms: int | None = None) -> Band | None:
        """Baseline -+ the alarm distance at ``ts_ms``; a count past the upper edge scores 0.5 or more.

        ``None`` during warm-up, when nothing is known yet.
        """
        if not self.ready:
            return None
        level, scale = self.expected(ts_ms)
        linear = level + self.z_alarm * scale
        # The score is the smaller of the linear and the Poisson (Anscombe) excess, so both must pass.
        poisson = (math.sqrt(max(level, 0.0) + 0.375) + self.z_alarm / 2.0) ** 2 - 0.375 if self.counts else linear
        return max(0.0, level - self.z_alarm * scale), max(linear, poisson, self.min_volume)

    def _z(self, x: float, ts_ms: int | None) -> float:
        """Signed excess of ``x`` in scales, against both baselines when the time-of-day one is known."""
        z = self._excess(x, self.level, self.scale)
        slot = self._season_slot(ts_ms)
        season = self._season.get(slot[0]) if slot else None
        if season is not None and season[2] >= self.season_min_days:
            z_season = self._excess(x, season[0], season[1])
            z = min(z, z_season) if z >= 0 else max(z, z_season)
        return abs(z) if self.direction == "both" else z

    def _rarity(self, z: float) -> float:
        """``-log10`` of how often an excess of ``z`` or more happens: this series' own past, shrunk to normal tails.

        ``tail_prior`` pseudo-values drawn from the normal tail stand beside the learned ones, so a young series
        is judged as normal noise and a long one by its own record, and an excess past anything seen is still
        as rare as the normal tail says, not merely one in ``n``.
        """
        index = _tail_bin(z)
        beyond = sum(self._tail[index:]) if index < len(self._tail) else 0.0
        normal_tail = 0.5 * math.erfc(z / math.sqrt(2.0))
        share = (beyond + self.tail_prior * normal_tail) / (self._tail_n + self.tail_prior)
        return -math.log10(max(share, 1e-300))

    def score_one(self, x: float, ts_ms: int | None = None) -> float:
        if not self.ready or not math.isfinite(x) or (self.min_volume > 0 and x < self.min_volume):
            return 0.0
        z = self._z(float(x), ts_ms)
        if self.calibrate:
            return squash(self._rarity(z), self.rarity_alarm) if z > 0 else 0.0
        return squash(z, self.z_alarm)

    def to_state(self) -> dict[str, Any]:
        return {
            "params": {name: getattr(self, name) for name in PARAMS} | {
                name: getattr(self, name) for name, unset in SERIES_PARAMS.items() if getattr(self, name) != unset},
            "n": self.n, "warm": list(self._warm), "level": self.level, "scale": self.scale,
            "season": {str(bucket): list(values) for bucket, values in self._season.items()},
        } | ({"run": list(self._run)} if self.shift_after else {}) | (
            {"tail": list(self._tail), "tail_n": self._tail_n} if self.calibrate else {})

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(**state["params"])
        detector.n = int(state["n"])
        detector._warm = [float(value) for value in state["warm"]]
        detector.level = float(state["level"])
        detector.scale = float(state["scale"])
        detector._season = {int(bucket): [float(v) for v in values] for bucket, values in state["season"].items()}
        detector._run = [float(value) for value in state.get("run", ())]
        detector._tail = [float(value) for value in state.get("tail", ())]
        detector._tail_n = float(state.get("tail_n", 0.0))
        return detector
