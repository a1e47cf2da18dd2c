"""How long the detectors need before an onset can be judged, and the event-time speed of a bench run.

>>> warmup_windows()
14
>>> schedule(quick=True, window_s=10)
Schedule(speed=10.0, warmup_wall_s=14.0, settle_wall_s=6.0)
"""

from __future__ import annotations

from dataclasses import dataclass


def warmup_windows() -> int:
    """The volume baseline's warm-up (the longest of the per-code kind's detectors) plus two windows of margin."""
    from detectors.ensemble import EnsembleConfig

    volume_warmup = int(EnsembleConfig().volume.get("warmup", 12))
    ratio_warmup = int(EnsembleConfig().ratio.get("warmup", 3))
    return max(volume_warmup, ratio_warmup) + 2


@dataclass(frozen=True)
class Schedule:
    """``speed`` event seconds per wall second; wall seconds of warm-up; wall seconds for windows to close after."""

    speed: float
    warmup_wall_s: float
    settle_wall_s: float


def schedule(quick: bool, window_s: int, speed: float | None = None) -> Schedule:
    """Real time for a full run; ten times compressed for ``--quick`` (the warm-up alone is 140 event seconds)."""
    speed = speed if speed is not None else (10.0 if quick else 1.0)
    return Schedule(speed=speed, warmup_wall_s=warmup_windows() * window_s / speed,
                    settle_wall_s=6 * window_s / speed)
