"""Weighted sampling of heartbeats when the collector is overloaded.

Heartbeats are "I am still listening" beacons: under a storm they are the
bulk of the traffic and individually the least informative, so once the
collector's in-flight work passes ``start_load`` it keeps 1 in 2, 1 in 4,
... (never fewer than ``min_keep``) of them and marks each kept one with
``weight`` = 1 / keep probability, so listener counts downstream stay right
in expectation. Errors, joins and leaves are never sampled. Whether a
heartbeat is kept depends only on its ``report_id``, so a client's retry
gets the same decision.

>>> policy = SamplingPolicy(start_load=0.5, min_keep=0.125)
>>> [keep_probability(load, policy) for load in (0.2, 0.5, 0.7, 0.9, 1.0)]
[1.0, 0.5, 0.25, 0.125, 0.125]
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

from core.schemas import ClientReport

MAX_WEIGHT = 1_000_000.0


@dataclass(frozen=True)
class SamplingPolicy:
    enabled: bool = True
    # In-flight requests / their limit at which sampling starts.
    start_load: float = 0.5
    # The smallest fraction of heartbeats kept (a power of two is exact).
    min_keep: float = 0.125


def keep_probability(load: float, policy: SamplingPolicy) -> float:
    """Fraction of heartbeats kept at ``load`` (0 idle .. 1 at the in-flight limit)."""
    if not policy.enabled or load < policy.start_load:
        return 1.0
    levels = max(1, math.ceil(math.log2(1 / policy.min_keep)))
    fraction = min(1.0, (load - policy.start_load) / max(1e-9, 1 - policy.start_load))
    step = min(levels, 1 + int(fraction * levels))
    return max(policy.min_keep, 2.0 ** -step)


def sample_heartbeats(reports: list[ClientReport], keep: float) -> tuple[list[ClientReport], int]:
    """Kept reports (heartbeats re-weighted) and how many heartbeats were dropped.

    >>> from core.schemas import ClientReport
    >>> beats = [ClientReport(report_id=f"r{i}", ts=1795323600000, client_id="c", room_id="x",
    ...                       kind="heartbeat", platform="ios") for i in range(1000)]
    >>> kept, dropped = sample_heartbeats(beats, 0.25)
    >>> len(kept) + dropped, kept[0].weight, 200 < len(kept) < 300
    (1000, 4.0, True)
    """
    if keep >= 1.0:
        return reports, 0
    threshold = int(keep * 0xFFFFFFFF)
    kept: list[ClientReport] = []
    dropped = 0
    for report in reports:
        if report.kind != "heartbeat":
            kept.append(report)
        elif zlib.crc32(report.report_id.encode()) <= threshold:
            report.weight = min(MAX_WEIGHT, report.weight / keep)
            kept.append(report)
        else:
            dropped += 1
    return kept, dropped
