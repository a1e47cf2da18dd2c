"""A mergeable latency sketch with bounded memory and a relative-error guarantee.

Log-spaced buckets in the style of DDSketch (Masson et al., VLDB 2019): a
value ``v > 0`` goes to bucket ``ceil(log(v) / log(gamma))`` with
``gamma = (1 + a) / (1 - a)``, so any quantile is answered within relative
error ``a`` (1 % here). Buckets are a plain ``dict[int, float]`` of weights:
JSON-serialisable for Faust tables and mergeable by adding dicts, which is
how the region/platform/global windows combine the rooms' sketches.
Latencies from 1 µs to 10 minutes need at most ~1,000 buckets, whatever the
number of reports.

>>> buckets: dict[int, float] = {}
>>> for v in [10, 20, 30, 40, 1000]:
...     add(buckets, v)
>>> round(quantile(buckets, 0.5), 1), round(quantile(buckets, 0.99), 0)  # within 1 % of 30 and 1000
(30.3, 1002.0)
>>> quantile({}, 0.5) is None
True
"""

from __future__ import annotations

import math

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
INVERSE_LOG_GAMMA = 1.0 / _LOG_GAMMA
# Values at or below this (including 0 ms) share one bucket reported as 0.
MIN_VALUE = _MIN_VALUE = 1e-3
ZERO_BUCKET = -(2**31)


def bucket_of(value: float) -> int:
    if value <= _MIN_VALUE:
        return ZERO_BUCKET
    return math.ceil(math.log(value) * INVERSE_LOG_GAMMA)


def add(buckets: dict[int, float], value: float, weight: float = 1.0) -> None:
    index = bucket_of(value)
    buckets[index] = buckets.get(index, 0.0) + weight


def merge(into: dict[int, float], other: dict[int, float]) -> None:
    for index, weight in other.items():
        into[index] = into.get(index, 0.0) + weight


def quantile(buckets: dict[int, float], q: float) -> float | None:
    """The ``q`` quantile (0..1) within 1 % relative error; ``None`` when empty."""
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank - 1e-9:
            return _value_of(index)
    return _value_of(max(buckets))


def _value_of(index: int) -> float:
    if index == ZERO_BUCKET:
        return 0.0
    # The bucket's midpoint in the relative sense: 2 * gamma^i / (gamma + 1).
    return 2.0 * _GAMMA**index / (_GAMMA + 1.0)
