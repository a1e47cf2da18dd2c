"""Multivariate server-metric anomalies: an IsolationForest per service.

Each window of a service is a vector of metrics (CPU, latency, error rate,
connections...). The forest is trained on the recent windows the caller
declared normal (``learn_one``) once there are ``min_train`` of them, and
retrained every ``retrain_every`` learned windows on the last ``window`` ones,
so it follows load that grows over an evening. A forest sees combinations:
each metric within its range, the pair unusual. It dilutes one metric far out
of range across all the others, so the score is the larger of

- the forest's anomaly score ``s`` (Liu et al.) over the 99th percentile of
  its own training windows, squashed with ``if_margin`` (0.5 at that margin);
- the largest per-metric robust z-score (median/MAD of the same training
  windows), squashed with ``z_alarm``.

A metric missing from a window takes its training median. Metric names are
fixed at each training; new names join at the next one.

Persistence: a pickled forest is megabytes, tied to one scikit-learn version
and not JSON. The state keeps instead the training rows and the seed, and
``from_state`` refits: same rows, same seed, the identical forest.

Parameters
----------
n_estimators, max_samples
    Size of the forest and of each tree's sample.
window
    Most recent learned windows the forest is trained on.
min_train
    Windows learned before the first training (score 0 until then).
retrain_every
    Learned windows between trainings.
if_margin
    Forest score above the training 99th percentile that scores 0.5.
z_alarm
    Per-metric robust z-score that scores 0.5.
seed
    Random state of the forest.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> server = ServerAnomaly(min_train=40, seed=1)
>>> for _ in range(60):
...     cpu = rng.normal(0.4, 0.05); latency = 80 + 100 * cpu + rng.normal(0, 3)
...     server.learn_one({"cpu": cpu, "latency_ms": latency, "errors_per_s": rng.poisson(2)})
>>> normal = {"cpu": 0.42, "latency_ms": 122.0, "errors_per_s": 2.0}
>>> broken = {"cpu": 0.95, "latency_ms": 900.0, "errors_per_s": 80.0}
>>> server.score_one(normal) < 0.5 <= server.score_one(broken)
True
>>> [name for name, *_ in server.explain(broken)]
['latency_ms', 'errors_per_s', 'cpu']

References
----------
- F. T. Liu, K. M. Ting, Z.-H. Zhou (2008), Isolation forest, ICDM.
- scikit-learn, sklearn.ensemble.IsolationForest.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.base import MAD_TO_SIGMA, squash

PARAMS = ("n_estimators", "max_samples", "window", "min_train", "retrain_every", "if_margin", "z_alarm", "seed")


class ServerAnomaly:
    def __init__(
        self,
        n_estimators: int = 50,
        max_samples: int = 128,
        window: int = 360,
        min_train: int = 30,
        retrain_every: int = 60,
        if_margin: float = 0.12,
        z_alarm: float = 6.0,
        seed: int = 0,
    ) -> None:
        if min_train < 2 or window < min_train:
            raise ValueError(f"need 2 <= min_train <= window, got min_train={min_train} window={window}")
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.window = window
        self.min_train = min_train
        self.retrain_every = retrain_every
        self.if_margin = if_margin
        self.z_alarm = z_alarm
        self.seed = seed
        # Kept long enough that the rows of the last training are always here (see to_state).
        self._rows: deque[dict[str, float]] = deque(maxlen=window + retrain_every)
        self._trained_on = 0  # rows in the last training: rows[-(since+trained_on):len-since]
        self._since_training = 0
        self._forest: IsolationForest | None = None
        self._names: list[str] = []
        self._medians = np.zeros(0)
        self._scales = np.zeros(0)
        self._reference = 0.0

    @property
    def ready(self) -> bool:
        return self._forest is not None

    def learn_one(self, x: Mapping[str, float]) -> None:
        row = {name: float(value) for name, value in x.items() if math.isfinite(value)}
        if not row:
            return
        self._rows.append(row)
        self._since_training += 1
        due = self._since_training >= self.retrain_every if self.ready else len(self._rows) >= self.min_train
        if due:
            self._train(list(self._rows)[-self.window:])

    def _train(self, rows: list[dict[str, float]]) -> None:
        names = sorted({name for row in rows for name in row})
        matrix = np.array([[row.get(name, math.nan) for name in names] for row in rows], dtype=float)
        medians = np.nanmedian(matrix, axis=0)
        matrix = np.where(np.isnan(matrix), medians, matrix)
        mads = np.median(np.abs(matrix - medians), axis=0)
        self._scales = np.maximum.reduce([MAD_TO_SIGMA * mads, 0.05 * np.abs(medians), np.full(len(names), 1e-6)])
        self._medians = medians
        self._names = names
        forest = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(rows)),
                                 random_state=self.seed)
        forest.fit(matrix)
        self._reference = float(np.quantile(-forest.score_samples(matrix), 0.99))
        self._forest = forest
        self._trained_on = len(rows)
        self._since_training = 0

    def _vector(self, x: Mapping[str, float]) -> np.ndarray:
        values = [float(x.get(name, math.nan)) for name in self._names]
        vector = np.array(values, dtype=float)
        return np.where(np.isfinite(vector), vector, self._medians)

    def explain(self, x: Mapping[str, float], top: int = 3) -> list[tuple[str, float, float, float]]:
        """The metrics furthest from normal: ``(name, value, training median, robust z)``."""
        if not self.ready:
            return []
        vector = self._vector(x)
        z = np.abs(vector - self._medians) / self._scales
        order = np.argsort(-z, kind="stable")[:top]
        return [(self._names[i], float(vector[i]), float(self._medians[i]), float(z[i])) for i in order]

    def score_one(self, x: Mapping[str, float]) -> float:
        if self._forest is None:
            return 0.0
        vector = self._vector(x)
        forest_score = float(-self._forest.score_samples(vector.reshape(1, -1))[0])
        metric_z = float(np.max(np.abs(vector - self._medians) / self._scales))
        return max(squash(forest_score - self._reference, self.if_margin), squash(metric_z, self.z_alarm))

    def to_state(self) -> dict[str, Any]:
        names = sorted({name for row in self._rows for name in row})
        return {
            "params": {name: getattr(self, name) for name in PARAMS},
            "names": names,
            "rows": [[row.get(name) for name in names] for row in self._rows],
            "trained_on": self._trained_on,
            "since_training": self._since_training,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        detector = cls(**state["params"])
        names = state["names"]
        for values in state["rows"]:
            detector._rows.append({name: float(v) for name, v in zip(names, values, strict=True) if v is not None})
        since, trained_on = int(state["since_training"]), int(state["trained_on"])
        if trained_on:
            rows = list(detector._rows)
            detector._train(rows[len(rows) - since - trained_on:len(rows) - since])
        detector._since_training = since
        return detector
