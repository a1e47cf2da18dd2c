"""Correlation: many rooms of one region/cluster alerting together are one incident.

Pure functions over what the engine knows at one watermark: which leaf keys
(rooms, services) are active, which of them are currently bad, and the
verdicts on the region/cluster/global aggregate windows. They return one
synthetic ``Decision`` per group (scope ``cluster``, kind ``correlated``) and
one for ``global``, which then run through the ordinary lifecycle.

>>> from alerting.policy import GroupingPolicy
>>> policy = GroupingPolicy(min_rooms=3, min_share=0.5)
>>> bad = [Member("region", "eu", f"room-{i}", "crash", "warning") for i in range(3)]
>>> verdicts = judge_groups(bad, {"eu": 4, "us": 10}, {"eu": "region", "us": "region"}, [], policy, (0, 10_000))
>>> [(v.decision.key, v.decision.bad, v.affected) for v in verdicts]
[('eu', True, ['room-0', 'room-1', 'room-2']), ('us', False, [])]
>>> judge_global(verdicts, [], policy, (0, 10_000)).decision.bad
False
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from alerting.policy import SEVERITY_RANK, GroupingPolicy
from alerting.summary import global_summary, incident_summary
from core.schemas import Decision, Evidence

CORRELATED = "correlated"
GLOBAL_KEY = "all"


@dataclass(frozen=True)
class Member:
    """A leaf alert that is currently bad (pending or firing, last window bad)."""

    label: str  # the label naming its group ("region", "cluster")
    group: str
    key: str
    kind: str
    severity: str


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    summary: str
    affected: list[str]
    # The error codes it is bad on: its rooms' and its own aggregate verdicts' (``Tracked.codes``).
    codes: frozenset[str] = frozenset()


def group_of(labels: Mapping[str, str], group_labels: Sequence[str]) -> tuple[str, str] | None:
    """(label, value) of the first grouping label present and non-empty."""
    for label in group_labels:
        value = labels.get(label, "")
        if value:
            return label, value
    return None


def _worst(severities: Iterable[str]) -> str:
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="warning")


def judge_groups(
    members: Iterable[Member],
    active: Mapping[str, int],
    group_label: Mapping[str, str],
    aggregates: Iterable[Decision],
    policy: GroupingPolicy,
    window: tuple[int, int],
    open_affected: Mapping[str, Collection[str]] | None = None,
) -> list[Verdict]:
    """One verdict per group that has active rooms, bad rooms or an aggregate verdict.

    ``open_affected`` lists, per open incident, the rooms it named: the
    incident stays bad while one of them still is, so it ends when the rooms
    it hit have recovered, not when too few remain bad to open one.
    """
    open_affected = open_affected or {}
    by_group: dict[str, list[Member]] = defaultdict(list)
    for member in members:
        by_group[member.group].append(member)
    bad_aggregates: dict[str, list[Decision]] = defaultdict(list)
    for aggregate in aggregates:
        if aggregate.bad:
            bad_aggregates[aggregate.key].append(aggregate)
    verdicts = []
    for group in sorted(set(active) | set(by_group) | set(bad_aggregates)):
        rooms = sorted({m.key for m in by_group[group]})
        active_rooms = max(active.get(group, 0), len(rooms))
        share = len(rooms) / active_rooms if active_rooms else 0.0
        by_rooms = len(rooms) >= policy.min_rooms and share >= policy.min_share
        own = bad_aggregates[group]
        still_hit = bool(open_affected.get(group)) and not set(rooms).isdisjoint(open_affected[group])
        bad = by_rooms or bool(own) or still_hit
        kinds = Counter(m.kind for m in by_group[group])
        evidence = [Evidence(detector="correlation", observed=len(rooms), baseline=active_rooms, score=share)]
        evidence += [e for d in own for e in d.evidence]
        severity = _worst([m.severity for m in by_group[group]] + [d.severity for d in own]) if bad else "warning"
        label = group_label.get(group) or (own[0].scope if own else "region")
        decision = Decision(
            scope="cluster",
            key=group,
            kind=CORRELATED,
            window_start=window[0],
            window_end=window[1],
            bad=bad,
            severity=severity,  # type: ignore[arg-type]
            score=share,
            evidence=evidence,
            labels={label: group},
        )
        codes = frozenset({*kinds, *(d.kind for d in own)}) if bad else frozenset()
        verdicts.append(Verdict(decision, incident_summary(group, rooms, active_rooms, kinds, own=own), rooms, codes))
    return verdicts


def judge_global(
    groups: Sequence[Verdict], global_decisions: Iterable[Decision], policy: GroupingPolicy, window: tuple[int, int]
) -> Verdict:
    """Global is bad when enough groups are bad or the global window itself is bad."""
    bad_groups = [v for v in groups if v.decision.bad]
    own = [d for d in global_decisions if d.bad]
    bad = len(bad_groups) >= policy.global_min_groups or bool(own)
    rooms = sorted({room for v in bad_groups for room in v.affected})
    evidence = [Evidence(detector="correlation", observed=len(bad_groups), baseline=len(groups), score=len(bad_groups))]
    evidence += [e for d in own for e in d.evidence]
    severity = _worst([v.decision.severity for v in bad_groups] + [d.severity for d in own]) if bad else "warning"
    decision = Decision(
        scope="global",
        key=GLOBAL_KEY,
        kind=CORRELATED,
        window_start=window[0],
        window_end=window[1],
        bad=bad,
        severity=severity,  # type: ignore[arg-type]
        score=float(len(bad_groups)),
        evidence=evidence,
    )
    names = [v.decision.key for v in bad_groups]
    return Verdict(decision, global_summary(names, len(rooms), bool(own)), names + rooms)
