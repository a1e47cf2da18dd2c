"""Aggregate verdicts explained by rooms already alerting are not new incidents.

A region, platform, app_version or global window sums the rooms under it, so
one huge failing room (a launch room with half the audience) makes every
aggregate its listeners feed look bad, and each would page as a region,
platform, version or global incident. Alertmanager-style inhibition cannot
tell that apart from a real spread, because the aggregate *is* bad; what can
is the remainder: the aggregate's error clients and listeners minus those of
the rooms already bad (for any kind) in the same window. The aggregate
verdict stands only if that remainder is still proven above the aggregate's
normal ratio (lower Wilson bound over ``lift`` times the baseline, with at
least ``min_errors`` error clients left). A room counted whole against a
region it only partly feeds leaves too few listeners, not too many errors, so
a real regional spread is never explained away.

Counts come from a decision's evidence: ``volume_baseline`` observes distinct
error clients, ``error_ratio`` the ratio (so listeners = clients / ratio);
``error_ratio`` decisions carry no count and borrow their ``volume`` sibling's.

>>> from outagewatch.schemas import Decision, Evidence
>>> def d(scope, key, kind, clients, ratio, baseline=0.001, bad=True):
...     evidence = [Evidence(detector="volume_baseline", observed=clients, baseline=1.0, score=0.9),
...                 Evidence(detector="error_ratio", observed=ratio, baseline=baseline, score=0.9)]
...     return Decision(scope=scope, key=key, kind=kind, window_start=0, window_end=10_000, bad=bad, evidence=evidence)
>>> rooms = Explained()
>>> rooms.add_rooms([d("room", "launch-1", "crash", 300, 0.03)])
>>> rooms.explains(d("global", "all", "crash", 310, 0.0155))   # the launch room is all of it
True
>>> rooms.explains(d("global", "all", "crash", 900, 0.03))     # 600 more crash clients elsewhere
False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detectors.ratio import wilson_bounds
from outagewatch.schemas import Decision

COUNT_KIND = {"error_ratio": "volume"}  # kinds whose own evidence has no count


def error_counts(decision: Decision) -> tuple[float, float, float] | None:
    """``(error clients, listeners, baseline ratio)`` from the evidence, None when it has no counts."""
    count = ratio = baseline = None
    for evidence in decision.evidence:
        if evidence.detector == "volume_baseline":
            count = evidence.observed
        elif evidence.detector == "error_ratio":
            ratio, baseline = evidence.observed, evidence.baseline
    if count is None or ratio is None or baseline is None:
        return None
    return count, (count / ratio if ratio > 0 else 0.0), baseline


@dataclass
class Explained:
    """The error clients and listeners of the rooms bad in one window, per kind."""

    lift: float = 2.0
    z: float = 3.0
    min_errors: float = 5.0

    def __post_init__(self) -> None:
        self._rooms: dict[tuple[int, str], tuple[float, float]] = {}
        self._aggregates: dict[tuple[str, str, int, str], Decision] = {}

    def add_rooms(self, decisions: Iterable[Decision]) -> None:
        """Remember, per kind, the counts of every room with a bad verdict in a window.

        A room failing in one way explains all its error clients: its other
        codes may still be below its own alarm line while they already lift
        an aggregate whose baseline is steadier.
        """
        decisions = list(decisions)
        failing = {(d.key, d.window_end) for d in decisions if d.bad}
        siblings = {(d.key, d.window_end, d.kind): d for d in decisions}
        for decision in decisions:
            if (decision.key, decision.window_end) not in failing:
                continue
            source = siblings.get((decision.key, decision.window_end, COUNT_KIND.get(decision.kind, decision.kind)))
            counts = error_counts(source) if source is not None else None
            if counts is None:
                continue
            slot = (decision.window_end, decision.kind)
            errors, listeners = self._rooms.get(slot, (0.0, 0.0))
            self._rooms[slot] = (errors + counts[0], listeners + counts[1])

    def add_aggregates(self, decisions: Iterable[Decision]) -> None:
        """Remember aggregate decisions, so an ``error_ratio`` one finds its ``volume`` sibling's counts."""
        for decision in decisions:
            self._aggregates[(decision.scope, decision.key, decision.window_end, decision.kind)] = decision

    def explains(self, decision: Decision) -> bool:
        """True when ``decision`` is bad only because of rooms already bad for its kind."""
        if not decision.bad:
            return False
        room = self._rooms.get((decision.window_end, decision.kind))
        if room is None:
            return False
        count_kind = COUNT_KIND.get(decision.kind, decision.kind)
        source = self._aggregates.get((decision.scope, decision.key, decision.window_end, count_kind), decision)
        counts = error_counts(source)
        if counts is None:
            return False
        errors, listeners, baseline = counts
        rest_errors, rest_listeners = errors - room[0], listeners - room[1]
        if rest_errors < self.min_errors:
            return True
        lower = wilson_bounds(rest_errors, max(rest_listeners, rest_errors), self.z)[0]
        return lower < self.lift * baseline

    def forget_before(self, window_end: int) -> None:
        self._rooms = {slot: v for slot, v in self._rooms.items() if slot[0] >= window_end}
        self._aggregates = {slot: d for slot, d in self._aggregates.items() if slot[2] >= window_end}
