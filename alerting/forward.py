"""Which leaf decisions a detector partition forwards to the one alerting partition.

Every room is judged on every kind each window, almost always good, and a
good verdict on a key with nothing pending changes no alert. So each detector
partition keeps the little the engine would remember of its rooms and
forwards (the rest of each window goes into one ``LeafSummary``):

- every bad decision, and every decision of a room window that has a bad one
  (``alerting.residual`` subtracts the whole failing room from its aggregates);
- the good decisions of a key after a bad one until it has recovered
  (``LifecyclePolicy.recovered``: what a firing alert needs to resolve; a
  pending one needs one good window);
- a good decision scoring at least ``suspect_score``, and the next one of that
  key (the engine remembers suspect windows, ``alerting.lifecycle``);
- everything during its first ``resolve_windows`` window ends (a restarted or
  rebalanced partition does not know what its keys still owe);
- every decision of a non-leaf scope (aggregates, services: few keys).

The summary says how far the partition's event time got and how many of its
rooms each group had active at each window end, so the engine's watermark,
staleness and correlation share stay what they are with every decision.

>>> from core.schemas import Decision
>>> forwarder = DecisionForwarder(AlertingPolicy(), "room-health:0", warmup_windows=0)
>>> def window(i, bad):
...     return Decision(scope="room", key="room-1", kind="crash", window_start=i * 10_000,
...                     window_end=(i + 1) * 10_000, bad=bad, labels={"region": "eu"})
>>> [len(forwarder.forward([window(i, bad)])[0]) for i, bad in enumerate([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])]
[0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
>>> forwarder.forward([window(11, False)])[1].active
[('region', 'eu', 120000, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerting.correlate import group_of
from alerting.policy import AlertingPolicy
from core.schemas import Decision, LeafSummary

OWED_KEEP_MS = 6 * 3600 * 1000


@dataclass
class _Owed:
    last_end: int  # window_end of the newest decision forwarded for the key
    goods: int = 0  # good windows in a row since its last bad one
    clears: int = 0  # ... and clear ones among the last of them


class DecisionForwarder:
    """One detector partition's filter in front of the alerting partition, and its ``LeafSummary``.

    ``source`` names the partition (``topic:partition``): the engine keeps the
    newest summary of each, so a partition that moves to another worker is
    summarised by its new owner, not twice. ``warmup_windows`` (default the
    policy's ``resolve_windows``): window ends during which it forwards
    everything, having no memory yet.
    """

    def __init__(self, policy: AlertingPolicy, source: str, warmup_windows: int | None = None) -> None:
        self.source = source
        self._leaves = policy.grouping.leaf_scopes
        self._group_labels = policy.grouping.group_labels
        self._lifecycle = policy.lifecycle
        # How long a leaf's activity is kept: twice the engine's active horizon, since the engine
        # counts back from its slowest live source, which may trail this partition.
        self._keep_ms = int(policy.grouping.active_seconds * 2000)
        self._warmup = policy.lifecycle.resolve_windows if warmup_windows is None else warmup_windows
        self._warm_ends: set[int] = set()
        self._owed: dict[tuple[str, str, str], _Owed] = {}
        self._suspects: set[tuple[str, str, str]] = set()
        self._where: dict[tuple[str, str], tuple[str, str, int]] = {}  # leaf -> (label, group, last window_end)
        self._active: dict[tuple[str, str, int], int] = {}  # (label, group, window_end) -> leaves last judged then
        self._watermark = (0, 0)
        self._judged = self._forwarded = 0

    def forward(self, decisions: Iterable[Decision]) -> tuple[list[Decision], LeafSummary]:
        """The decisions the engine needs, in their order, and the summary of this partition as of now."""
        decisions = list(decisions)
        failing = {(d.scope, d.key, d.window_end) for d in decisions if d.bad}
        forwarded = []
        for decision in decisions:
            if decision.window_end > self._watermark[1]:
                self._watermark = (decision.window_start, decision.window_end)
            if decision.scope not in self._leaves:
                forwarded.append(decision)
                continue
            self._judged += 1
            self._note_active(decision)
            warming = len(self._warm_ends) < self._warmup
            if warming:
                self._warm_ends.add(decision.window_end)
            needed = self._needed(decision, (decision.scope, decision.key, decision.window_end) in failing)
            if needed or warming:
                self._forwarded += 1
                forwarded.append(decision)
        return forwarded, self.summary()

    def summary(self) -> LeafSummary:
        self._forget_before(self._watermark[1] - self._keep_ms)
        summary = LeafSummary(
            source=self.source, watermark=self._watermark,
            active=[(label, group, end, count) for (label, group, end), count in sorted(self._active.items())],
            judged=self._judged, forwarded=self._forwarded,
        )
        self._judged = self._forwarded = 0
        return summary

    def _needed(self, decision: Decision, window_failing: bool) -> bool:
        track = (decision.scope, decision.key, decision.kind)
        owed = self._owed.get(track)
        if decision.bad:
            if owed is None or decision.window_end >= owed.last_end:
                self._owed[track] = _Owed(decision.window_end)
            return True
        suspect = not self._lifecycle.clear(decision.score)
        was_suspect = track in self._suspects
        if suspect:
            self._suspects.add(track)
        elif was_suspect:
            self._suspects.discard(track)
        if owed is not None and decision.window_end > owed.last_end:
            owed.goods, owed.last_end = owed.goods + 1, decision.window_end
            owed.clears = 0 if suspect else owed.clears + 1
            if self._lifecycle.recovered(owed.clears, owed.goods):
                del self._owed[track]
            return True
        return window_failing or suspect or was_suspect or owed is not None

    def _note_active(self, decision: Decision) -> None:
        where = group_of(decision.labels, self._group_labels)
        if where is None:
            return
        leaf = (decision.scope, decision.key)
        before = self._where.get(leaf)
        if before is not None:
            self._drop_active((before[0], before[1], before[2]))
        self._where[leaf] = (where[0], where[1], decision.window_end)
        slot = (where[0], where[1], decision.window_end)
        self._active[slot] = self._active.get(slot, 0) + 1

    def _drop_active(self, slot: tuple[str, str, int]) -> None:
        left = self._active[slot] - 1
        if left:
            self._active[slot] = left
        else:
            del self._active[slot]

    def _forget_before(self, window_end: int) -> None:
        if not any(end < window_end for _, _, end in self._active):
            return
        self._where = {leaf: where for leaf, where in self._where.items() if where[2] >= window_end}
        self._active = {slot: count for slot, count in self._active.items() if slot[2] >= window_end}
        # What a key owes is kept much longer: an alert stays open while another kind of its key is still
        # bad (its heartbeats gone, ``AlertEngine._expire_stale``), and must resolve on its goods after.
        owed_after = window_end - OWED_KEEP_MS
        self._owed = {track: owed for track, owed in self._owed.items() if owed.last_end >= owed_after}
