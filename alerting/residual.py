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
a real regional spread is never explained away. Nor is a spread over many
rooms of several groups: at least ``max_rooms`` bad rooms (as many make an
incident of their own, ``alerting.correlate``) in more than one region or
cluster explain nothing, so every room failing at once is a global
incident and every room of one platform failing a platform one. Many rooms
of one region still explain the platforms and versions they lift: that is
the region's incident, and two or more of them never explain their own
region, which pages it with them affected (one room still does: a launch
room is no region outage).

Nor do rooms explain a platform or app version whose excess is nearly
all their error clients (``contain``, 90 %), none of the rooms holding
most of those (``one_room``, 80 %), with fewer listeners than they have
(``room_share``, 75 %) or, for rooms of at least ``mixed_listeners`` (300
in a window), with at most half of everyone's (``minority``), and beyond
counting noise (``noise_z`` deviations past what a room failing whole
could lift it by: eight join failures against five is no proof). A room
failing on its own fails for all its listeners, and lifts a version by
about the version's share of them; a bad release fails only its own
clients, and every big room's excess is then the version's. There the
rooms are the version's symptoms, and the version pages
(``alerting.inhibit.WideFirst`` keeps the rooms' pages of its code back).
Small rooms, which may all be on one platform, still explain it, as does
a version most listeners run, and so does one room holding most of the
errors: android clients crashing only in the launch room are that room's
incident. What this cannot tell apart: big rooms failing together whose
failing listeners happen to share one minority version.

The same holds one level up: an aggregate is explained when the bad rooms
plus **one** other bad aggregate of another dimension account for it. A
launch room and its cluster's region make the global window bad; a crashing
app version makes its platform and the global window bad. The explaining
aggregate is the diagnosis (``app_version 7.41.0``, the ``us-east`` group),
the explained ones would only page the same incident under a vaguer name. A
storm everywhere is not explained: no one region, platform or version holds
most of it. The global window never explains others (it contains them all);
when two aggregates explain each other (a crash only on one version in one
region), the one with fewer listeners is the diagnosis and still pages.

A room clear again for at most ``tail_windows`` windows (3) still counts,
with its current window's counts: a big room's failure has a tail (slow
clients, late reports) that keeps a small platform or version lit for a
window or two after the room itself is clear, and that tail paged as the
platform's incident.

Counts come from a decision's evidence: ``volume_baseline`` observes distinct
error clients, ``error_ratio`` the ratio (so listeners = clients / ratio);
``error_ratio`` decisions carry no count and borrow their ``volume`` sibling's.

>>> import msgspec
>>> from core.schemas import Decision, Evidence
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
>>> spread = Explained(max_rooms=5)
>>> spread.add_rooms([msgspec.structs.replace(d("room", f"room-{i}", "crash", 60, 0.03), labels={"region": f"r{i % 2}"})
...                   for i in range(5)])
>>> spread.explains(d("global", "all", "crash", 310, 0.0155))   # five rooms in two regions are a spread
False
>>> spread.add_aggregates([d("platform", "ios", "crash", 300, 0.06)])
>>> spread.explains(d("global", "all", "crash", 310, 0.0155))   # unless one platform holds them
True
>>> release = Explained()
>>> release.add_rooms([d("room", "big-1", "crash", 300, 0.03), d("room", "big-2", "crash", 200, 0.02)])
>>> release.explains(d("app_version", "7.40.2", "crash", 520, 0.26))   # 2,000 listeners hold all the rooms' errors
False
>>> release.explains(d("app_version", "7.41.0", "crash", 150, 0.01))   # a room failure lifting its share of it
True
>>> version, ios, world = (d("app_version", "7.41.0", "crash", 400, 0.08), d("platform", "ios", "crash", 410, 0.041),
...                        d("global", "all", "crash", 450, 0.015))
>>> versions = Explained()
>>> versions.add_aggregates([version, ios, world])
>>> [versions.explains(aggregate) for aggregate in (world, ios, version)]
[True, True, False]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from alerting.correlate import group_of
from core.schemas import Decision
from detectors.ensemble import FORGERY
from detectors.ratio import wilson_bounds

COUNT_KIND = {"error_ratio": "volume"}  # kinds whose own evidence has no count
# Aggregates that a room failure lifts only by their share of its listeners (see ``Explained.contain``).
CONTAINING_SCOPES = ("platform", "app_version")


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
class BadRooms:
    """The rooms bad in one window, for one kind: what they can explain."""

    errors: float = 0.0  # their error clients
    listeners: float = 0.0
    expected: float = 0.0  # the error clients their baselines expect
    most: float = 0.0  # the most error clients of one of them
    # room -> its group, and whether it is bad as an outage (not only as a suspected forgery)
    groups: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class Explained:
    """The error clients and listeners of the rooms bad in one window, per kind."""

    lift: float = 2.0
    z: float = 3.0
    min_errors: float = 5.0
    max_rooms: int = 5
    # A platform or version whose excess is this share of the bad rooms' error clients is their cause.
    contain: float = 0.9
    # ... unless one room holds more than this share of those error clients: that room's incident.
    one_room: float = 0.8
    noise_z: float = 2.0
    # ... when it has fewer listeners than this share of the rooms': a room failing whole lifts it by
    # at most that share. A version with as many listeners as the rooms may be all of them.
    room_share: float = 0.75
    # ... or when it is at most this share of all listeners and the rooms have this many (in a window):
    # rooms that big carry about every platform's and version's share of the audience.
    minority: float = 0.5
    mixed_listeners: float = 300.0
    # The labels naming a room's group, first present wins (``GroupingPolicy.group_labels``).
    group_labels: tuple[str, ...] = ("cluster", "region")
    # A platform or version verdict scoring this much may name a room's incident (``awaited``;
    # ``LifecyclePolicy.suspect_score``); None: none is ever awaited.
    suspect_score: float | None = 0.4
    # A room still explains what it lifts for this many windows after its last bad one: its failure's
    # tail (slow clients, late reports) keeps a small platform or version lit after the room is clear.
    tail_windows: int = 3

    def __post_init__(self) -> None:
        self._last_bad: dict[str, int] = {}  # room -> the window_end of its last bad verdict (as an outage)
        self._rooms: dict[tuple[int, str], BadRooms] = {}  # (window_end, kind) -> the rooms bad there
        self._aggregates: dict[tuple[str, str, int, str], Decision] = {}
        # (window_end, kind) -> (scope, key) -> its platform and version verdicts (what ``awaited`` reads)
        self._wide: dict[tuple[int, str], dict[tuple[str, str], Decision]] = {}
        # (kind, window_end) -> (self._changes when computed, ``awaited``'s answer): a storm fires
        # thousands of rooms in one window, and each asks the same question.
        self._awaited: dict[tuple[str, int], tuple[int, Decision | None]] = {}
        self._changes = 0

    def add_rooms(self, decisions: Iterable[Decision]) -> None:
        """Remember, per kind, the counts of every room with a bad verdict in a window.

        A room failing in one way explains all its error clients: its other
        codes may still be below its own alarm line while they already lift
        an aggregate whose baseline is steadier.
        """
        decisions = list(decisions)
        self._changes += 1
        # Failing as an outage, not only as a suspected forgery (whose errors still explain what they lift).
        outage = {(d.key, d.window_end) for d in decisions if d.bad and d.kind != FORGERY}
        for key, window_end in outage:
            self._last_bad[key] = max(window_end, self._last_bad.get(key, window_end))
        tail = {(d.key, d.window_end) for d in decisions if not d.bad and d.key in self._last_bad
                and d.window_end - self._last_bad[d.key] <= self.tail_windows * (d.window_end - d.window_start)}
        failing = {(d.key, d.window_end) for d in decisions if d.bad} | tail
        outage |= tail
        siblings = {(d.key, d.window_end, d.kind): d for d in decisions}
        for decision in decisions:
            if (decision.key, decision.window_end) not in failing:
                continue
            source = siblings.get((decision.key, decision.window_end, COUNT_KIND.get(decision.kind, decision.kind)))
            counts = error_counts(source) if source is not None else None
            if counts is None:
                continue
            bad = self._rooms.setdefault((decision.window_end, decision.kind), BadRooms())
            bad.errors += counts[0]
            bad.listeners += counts[1]
            bad.expected += counts[1] * counts[2]
            bad.most = max(bad.most, counts[0])
            where = group_of(decision.labels, self.group_labels)
            bad.groups[decision.key] = (where[1] if where else "", (decision.key, decision.window_end) in outage)

    def add_aggregates(self, decisions: Iterable[Decision]) -> None:
        """Remember aggregate decisions, so an ``error_ratio`` one finds its ``volume`` sibling's counts."""
        self._changes += 1
        for decision in decisions:
            self._aggregates[(decision.scope, decision.key, decision.window_end, decision.kind)] = decision
            if decision.scope in CONTAINING_SCOPES:
                self._wide.setdefault((decision.window_end, decision.kind), {})[(decision.scope, decision.key)] = decision

    def explains(self, decision: Decision) -> bool:
        """True when ``decision`` is bad only because of rooms already bad, or of one other aggregate, for its kind."""
        if not decision.bad:
            return False
        counts = self._counts(decision)
        if counts is None:
            return False
        bad = self._rooms.get((decision.window_end, decision.kind), BadRooms())
        errors, listeners, groups = bad.errors, bad.listeners, bad.groups
        # A spread over many rooms of several groups is no room's: only another aggregate (the platform
        # they share) can explain it.
        spread = len(groups) >= self.max_rooms and len({group for group, _ in groups.values()}) > 1
        # Nor are rooms whose excess is nearly all this platform's or version's: they are its symptoms.
        held = self._symptoms(decision, counts, bad, beyond_noise=True)
        # Nor do several bad rooms of a region explain that region: they are its incident, and it pages them.
        own = decision.scope == "region" and sum(1 for group, outage in groups.values()
                                                 if outage and group == decision.key) >= 2
        rooms = (0.0, 0.0) if spread or held or own else (errors, listeners)
        if groups and not spread and self._normal_after(counts, rooms):
            return True
        return self.explained_by(decision, counts, rooms) is not None

    def _symptoms(self, decision: Decision, counts: tuple[float, float, float], bad: BadRooms,
                  beyond_noise: bool) -> bool:
        """Whether the bad rooms are this platform's or version's symptoms: its excess is nearly all their
        error clients, no one of them holds most of those, and their listeners cannot all be its own.

        ``beyond_noise``: and its error clients, less counting noise, are more than the rooms failing
        whole could lift it by (what ``explains`` asks before it lets an aggregate page past its rooms).
        """
        errors = bad.errors
        return (decision.scope in CONTAINING_SCOPES and errors > bad.expected and bad.most <= self.one_room * errors
                and counts[0] - counts[1] * counts[2] >= self.contain * errors
                and (not beyond_noise or counts[0] - self.noise_z * math.sqrt(counts[0])
                     >= self.room_share * errors + counts[1] * counts[2])
                and self._cannot_be_all_of(decision, counts[1], bad.listeners))

    def awaited(self, kind: str, window_end: int) -> Decision | None:
        """A platform or app version verdict of ``kind`` in this window that may yet page the incident its bad
        rooms are part of, or None.

        One scoring at least ``suspect_score`` (bad, or short of proof: the first window of a bad
        release) that is bad and not explained by the rooms (``explains``), or whose failure the rooms'
        look like (``_symptoms`` short of the noise margin), or whose excess error clients, beyond
        counting noise, outnumber every error client of the rooms bad in the window. A crashing
        release lifts the crash ratio of the big rooms with its listeners a window before its own
        verdict is proven; a wrong wait costs a room's page one window, a wrong explanation would
        cost the release's page, so waiting asks less proof than explaining.
        """
        if self.suspect_score is None:
            return None
        slot = (kind, window_end)
        known = self._awaited.get(slot)
        if known is not None and known[0] == self._changes:
            return known[1]
        answer = self._awaited_now(kind, window_end, self.suspect_score)
        self._awaited[slot] = (self._changes, answer)
        return answer

    def _awaited_now(self, kind: str, window_end: int, suspect_score: float) -> Decision | None:
        bad = self._rooms.get((window_end, kind))
        if bad is None:
            return None
        for decision in self._wide.get((window_end, kind), {}).values():
            if decision.score < suspect_score:
                continue
            counts = self._counts(decision)
            if counts is None:
                continue
            if decision.bad and not self.explains(decision):
                return decision
            excess = counts[0] - counts[1] * counts[2] - self.noise_z * math.sqrt(counts[0])
            if excess > bad.errors or self._symptoms(decision, counts, bad, beyond_noise=False):
                return decision
        return None

    def _cannot_be_all_of(self, decision: Decision, slice_listeners: float, room_listeners: float) -> bool:
        """Whether the bad rooms' listeners cannot all be on ``decision``'s platform or version.

        Surely not when it has fewer listeners than they do; nor, for rooms
        big enough to carry the platform's usual mix, when it is a minority
        of everyone (a 40-listener room may well be all web).
        """
        if slice_listeners < self.room_share * room_listeners:
            return True
        world = self._aggregates.get(("global", "all", decision.window_end, COUNT_KIND.get(decision.kind, decision.kind)))
        everyone = error_counts(world) if world is not None else None
        return (everyone is not None and room_listeners >= self.mixed_listeners
                and slice_listeners <= self.minority * everyone[1])

    def explained_by(self, decision: Decision, counts: tuple[float, float, float],
                     rooms: tuple[float, float]) -> Decision | None:
        """The other bad aggregate that, with the bad rooms, accounts for ``decision`` (None if there is none)."""
        for other in self._aggregates.values():
            if (other.window_end != decision.window_end or other.kind != decision.kind or not other.bad
                    or other.scope in ("global", decision.scope)):
                continue
            other_counts = self._counts(other)
            if other_counts is None:
                continue
            if not self._normal_after(counts, (rooms[0] + other_counts[0], rooms[1] + other_counts[1])):
                continue
            mutual = self._normal_after(other_counts, (rooms[0] + counts[0], rooms[1] + counts[1]))
            if decision.scope == "global" or not mutual or other_counts[1] < counts[1]:
                return other
        return None

    def _counts(self, decision: Decision) -> tuple[float, float, float] | None:
        count_kind = COUNT_KIND.get(decision.kind, decision.kind)
        source = self._aggregates.get((decision.scope, decision.key, decision.window_end, count_kind), decision)
        return error_counts(source)

    def _normal_after(self, counts: tuple[float, float, float], minus: tuple[float, float]) -> bool:
        """Whether what is left of ``counts`` after removing ``minus`` (errors, listeners) is no longer proven bad."""
        errors, listeners, baseline = counts
        rest_errors, rest_listeners = errors - minus[0], listeners - minus[1]
        if rest_errors < self.min_errors:
            return True
        lower = wilson_bounds(rest_errors, max(rest_listeners, rest_errors), self.z)[0]
        return lower < self.lift * baseline

    def forget_before(self, window_end: int) -> None:
        self._last_bad = {room: end for room, end in self._last_bad.items() if end >= window_end}
        self._rooms = {slot: v for slot, v in self._rooms.items() if slot[0] >= window_end}
        self._aggregates = {slot: d for slot, d in self._aggregates.items() if slot[2] >= window_end}
        self._wide = {slot: kept for slot, kept in self._wide.items() if slot[0] >= window_end}
        self._awaited = {slot: kept for slot, kept in self._awaited.items() if slot[1] >= window_end}
