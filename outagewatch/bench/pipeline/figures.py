"""Pure arithmetic of the whole-pipeline figures: percentiles, the loss account, lag and memory summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank), ``None`` for no values.

    >>> percentile([5, 1, 4, 2, 3], 50), percentile(range(1, 101), 95), percentile([], 95)
    (3, 95, None)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def loss_account(acknowledged: int, sampled_out: int, stored_rows: int, stored_weight: float) -> dict[str, Any]:
    """What reached ClickHouse against what the collector acknowledged.

    Each kept report is one row; a sampled-out heartbeat has no row of its
    own, so zero loss is: distinct rows = acknowledged - sampled out. Kept
    heartbeats carry weight 1/keep, so the weights sum to the acknowledged
    count only in expectation: ``weight_ratio`` is shown, not checked.

    >>> loss_account(1000, 100, 900, 1003.0)["zero_loss"]
    True
    >>> account = loss_account(1000, 100, 890, 990.0)
    >>> account["lost"], account["zero_loss"], account["weight_ratio"]
    (10, False, 0.99)
    """
    expected = acknowledged - sampled_out
    return {"acknowledged": acknowledged, "sampled_out": sampled_out, "expected_rows": expected,
            "stored_rows": stored_rows, "stored_weight": round(stored_weight, 1),
            "weight_ratio": round(stored_weight / acknowledged, 4) if acknowledged else None,
            "lost": max(0, expected - stored_rows), "extra_rows": max(0, stored_rows - expected),
            "zero_loss": acknowledged > 0 and stored_rows == expected}


def lag_summary(samples: Sequence[tuple[float, int | None]]) -> dict[str, Any]:
    """p50/p95/max of ``(seconds since start, records behind)`` samples, and whether it kept growing.

    ``growing`` compares the mean of the last third with the first third: a
    rate the pipeline cannot sustain shows as a lag that only grows.

    >>> lag_summary([(0, 0), (1, 10), (2, 20), (3, 40), (4, 80), (5, 160)])["growing"]
    True
    >>> lag_summary([(0, 5), (1, 9), (2, 4), (3, 6), (4, 5), (5, 3)])["p95"]
    9
    """
    lags = [lag for _, lag in samples if lag is not None]
    third = len(lags) // 3
    growing = bool(third) and sum(lags[-third:]) / third > 2 * max(1.0, sum(lags[:third]) / third)
    return {"samples": len(lags), "p50": percentile(lags, 50), "p95": percentile(lags, 95),
            "max": max(lags) if lags else None, "last": lags[-1] if lags else None, "growing": growing}


def peak_memory(samples: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, float | None]:
    """Peak resident MiB per process: the kernel's VmHWM where read, else the largest sampled RSS.

    >>> peak_memory({"worker": [{"rss_mib": 90.0, "peak_rss_mib": 120.5}, {"rss_mib": 100.0}], "sink": []})
    {'worker': 120.5, 'sink': None}
    """
    out: dict[str, float | None] = {}
    for name, readings in samples.items():
        values = [reading.get("peak_rss_mib", reading.get("rss_mib", 0.0)) for reading in readings]
        values += [reading.get("rss_mib", 0.0) for reading in readings]
        out[name] = max(values) if values else None
    return out
