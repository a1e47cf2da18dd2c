"""The facade a worker calls: decisions in, alert events out.

>>> from core.schemas import Decision
>>> from core.timeutil import ManualClock
>>> engine = AlertEngine(AlertingPolicy(), ManualClock(0))
>>> def window(i, bad):
...     return Decision(scope="room", key="room-17", kind="crash", window_start=i * 10_000,
...                     window_end=(i + 1) * 10_000, bad=bad, labels={"region": "eu"})
>>> [[a.status for a in engine.process([window(i, bad)])] for i, bad in enumerate([1, 1, 0, 0, 0, 0, 0, 0])]
[[], ['firing'], [], [], [], [], [], ['resolved']]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import msgspec

from alerting.correlate import CORRELATED, GLOBAL_KEY, Member, group_of, judge_global, judge_groups
from alerting.identity import fingerprint
from alerting.inhibit import Inhibitor
from alerting.lifecycle import Tracked, observe, resolve
from alerting.muter import Muter
from alerting.policy import AlertingPolicy
from alerting.residual import Explained
from alerting.silence import Silences
from alerting.summary import decision_summary
from core.schemas import Alert, Decision, LeafSummary
from core.timeutil import Clock

log = logging.getLogger("outagewatch.alerting")

STATE_VERSION = 1
AGGREGATE_SCOPES = ("region", "cluster")
# A source that sent nothing for this long (wall time) no longer holds the horizons back.
SOURCE_IDLE_SECONDS = 30.0


class AlertEngine:
    """Lifecycle per (scope, key, kind), correlation into incidents, muters.

    An aggregate verdict (region, platform, app_version, cluster, global) that
    the rooms already bad for the same kind explain is judged good
    (``alerting.residual``): one failing room is a room page, not a global one.

    Event time comes from the decisions (``window_end`` is an event's
    ``event_ts``); the injected clock only drives silence expiry.
    The engine must see every leaf decision of a group to correlate it: run
    one engine per region/cluster partition, or one for everything.
    """

    def __init__(self, policy: AlertingPolicy, clock: Clock, wall: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._group_lifecycle = replace(
            policy.lifecycle,
            pending_windows=policy.grouping.pending_windows,
            critical_pending_windows=policy.grouping.pending_windows,
        )
        self._tracks: dict[str, Tracked] = {}
        self._groups: dict[str, Tracked] = {}
        self._global = Tracked.new("global", GLOBAL_KEY, CORRELATED)
        # leaf "scope\x00key" -> (group label, group, last window_end): who is active where
        self._seen: dict[str, tuple[str, str, int]] = {}
        # source -> its newest LeafSummary's active leaves, (label, group, window_end) -> leaves: who is
        # active where, for the leaves of detector partitions that forward only what can change an alert
        self._summaries: dict[str, dict[tuple[str, str, int], int]] = {}
        self._aggregates: dict[str, Decision] = {}  # "scope\x00key\x00kind" -> latest verdict
        # fingerprint -> window_end of its last good-but-suspect window (see LifecyclePolicy.suspect_score)
        self._suspects: dict[str, int] = {}
        self._watermark = (0, 0)  # (window_start, window_end) of the newest window seen
        # Rooms explain an aggregate while fewer are bad than would make an incident of their own.
        self._explained = Explained(max_rooms=policy.grouping.min_rooms, group_labels=policy.grouping.group_labels,
                                    suspect_score=policy.lifecycle.suspect_score)
        # source (a window topic partition) -> (its newest window end, wall time it was seen)
        self._sources: dict[str, tuple[int, float]] = {}
        self._wall = wall
        self.silences = Silences(clock)
        self.inhibitor = Inhibitor(self, policy.grouping)

    @property
    def muters(self) -> list[Muter]:
        return [self.inhibitor, self.silences]

    def open_group(self, group: str) -> Tracked | None:
        track = self._groups.get(group)
        return track if track is not None and track.open else None

    def open_global(self) -> Tracked | None:
        return self._global if self._global.open else None

    def open_alerts(self) -> list[Tracked]:
        every = [*self._tracks.values(), *self._groups.values(), self._global]
        return [t for t in every if t.open]

    def awaited(self, kind: str, window_end: int) -> Decision | None:
        """A platform or version verdict of ``kind`` at ``window_end`` that may yet page the incident its bad
        rooms are part of (``alerting.residual.Explained.awaited``)."""
        return self._explained.awaited(kind, window_end)

    def note_progress(self, sources: Mapping[str, int]) -> None:
        """Record how far each input source (a window topic partition) has got, in event time.

        A worker catching up reads partitions unevenly: one may be minutes of
        event time ahead of another. Staleness and the correlation horizon are
        measured from the slowest source that is still moving, so a room whose
        partition lags is neither resolved as stale nor dropped from its group.
        """
        now = self._wall()
        for source, window_end in sources.items():
            known = self._sources.get(source)
            self._sources[source] = (max(window_end, known[0]) if known else window_end, now)

    def horizon_end(self) -> int:
        """The event time horizons count back from: the newest window, or the slowest live source's."""
        now = self._wall()
        live = [end for end, seen in self._sources.values() if now - seen <= SOURCE_IDLE_SECONDS]
        return min([self._watermark[1], *live])

    def process(self, decisions: Iterable[Decision], summaries: Iterable[LeafSummary] = ()) -> list[Alert]:
        """Feed decisions (any order of keys, event time ascending per key); return alert events.

        ``summaries`` come from detector partitions that forward only the leaf
        decisions that can change an alert (``alerting.forward``): they say how
        far each got and which of its leaves are active; once one has arrived,
        leaf activity is counted from summaries only.
        """
        events: list[Alert] = []
        seen_any = False
        decisions = list(decisions)
        for summary in summaries:
            seen_any = True
            self._summaries[summary.source] = {(label, group, end): leaves
                                               for label, group, end, leaves in summary.active}
            if summary.watermark[1] > self._watermark[1]:
                self._watermark = (summary.watermark[0], summary.watermark[1])
        leaves = self.policy.grouping.leaf_scopes
        self._explained.add_rooms(d for d in decisions if d.scope == "room")
        self._explained.add_aggregates(d for d in decisions if d.scope not in leaves and d.scope != "service")
        for decision in decisions:
            seen_any = True
            if decision.scope not in ("room", "service") and self._explained.explains(decision):
                # Bad only through rooms already alerting for this kind: not a new incident.
                decision = msgspec.structs.replace(decision, bad=False, severity="info", score=0.0)
            if decision.window_end > self._watermark[1]:
                self._watermark = (decision.window_start, decision.window_end)
            if decision.scope == "global" or decision.scope in AGGREGATE_SCOPES:
                self._keep_aggregate(decision)
                continue
            event = self._observe_leaf(decision)
            if event is not None:
                events.append(event)
        if seen_any:
            self._explained.forget_before(self.horizon_end() - int(self.policy.grouping.active_seconds * 1000))
            events += self._expire_stale()
            events += self._correlate()
        for event in events:
            log.info("alert %s %s [%s] %s", event.status, event.fingerprint, event.severity, event.summary)
        return events

    def _keep_aggregate(self, decision: Decision) -> None:
        slot = f"{decision.scope}\x00{decision.key}\x00{decision.kind}"
        kept = self._aggregates.get(slot)
        if (
            kept is None
            or decision.window_end > kept.window_end
            or (decision.window_end == kept.window_end and decision.bad)
        ):
            self._aggregates[slot] = decision

    def _observe_leaf(self, decision: Decision) -> Alert | None:
        if decision.scope in self.policy.grouping.leaf_scopes and not self._summaries:
            group = group_of(decision.labels, self.policy.grouping.group_labels)
            if group is not None:
                self._seen[f"{decision.scope}\x00{decision.key}"] = (group[0], group[1], decision.window_end)
        fp = fingerprint(decision.scope, decision.key, decision.kind)
        track = self._tracks.get(fp)
        if track is None:
            if not decision.bad:
                self._note_suspect(fp, decision)
                return None  # the common case: a good window of a key with nothing pending
            track = self._tracks[fp] = Tracked.new(decision.scope, decision.key, decision.kind)
            track.suspect_end = self._suspects.pop(fp, 0)
        summary = decision_summary(decision) if decision.bad else track.summary
        event = observe(track, decision, self.policy.lifecycle, summary)
        if track.phase == "inactive":
            del self._tracks[fp]  # only open or pending alerts cost memory
            if not decision.bad:
                self._note_suspect(fp, decision)
        return event

    def _note_suspect(self, fp: str, decision: Decision) -> None:
        threshold = self.policy.lifecycle.suspect_score
        if threshold is not None and decision.score >= threshold:
            self._suspects[fp] = decision.window_end
        elif self._suspects:
            self._suspects.pop(fp, None)

    def _expire_stale(self) -> list[Alert]:
        horizon = self.horizon_end() - int(self.policy.lifecycle.stale_seconds * 1000)
        # A key still judged bad on another kind (its heartbeats gone: ``heartbeat_loss`` on dark windows)
        # has not gone stale: its error alerts wait for windows that can judge them, not for expiry.
        alive = {(t.scope, t.key) for t in self._tracks.values() if t.last_bad and t.last_window_end >= horizon}
        events = []
        for fp, track in list(self._tracks.items()):
            if track.last_window_end >= horizon or (track.open and (track.scope, track.key) in alive):
                continue
            if track.open:
                log.info("alert %s: no decision since %d, resolving it as stale", fp, track.last_window_end)
                events.append(resolve(track, self._watermark[1], ends_at=track.last_window_end))
            del self._tracks[fp]
        for fp, window_end in list(self._suspects.items()):
            if window_end < horizon:
                del self._suspects[fp]
        return events

    def _correlate(self) -> list[Alert]:
        grouping = self.policy.grouping
        horizon = self.horizon_end() - int(grouping.active_seconds * 1000)
        active: dict[str, int] = {}
        labels: dict[str, str] = {}
        for leaf, (label, group, last_end) in list(self._seen.items()):
            if last_end < horizon:
                del self._seen[leaf]
                continue
            active[group] = active.get(group, 0) + 1
            labels[group] = label
        for source, slots in self._summaries.items():
            self._summaries[source] = slots = {slot: n for slot, n in slots.items() if slot[2] >= horizon}
            for (label, group, _), leaves in slots.items():
                active[group] = active.get(group, 0) + leaves
                labels[group] = label
        members = []
        for track in self._tracks.values():
            if track.scope in grouping.leaf_scopes and track.last_bad and track.last_window_end >= horizon:
                where = group_of(track.labels, grouping.group_labels)
                if where is not None:
                    members.append(Member(where[0], where[1], track.key, track.kind, track.severity))
        recent = [d for d in self._aggregates.values() if d.window_end >= horizon]
        self._aggregates = {k: d for k, d in self._aggregates.items() if d.window_end >= horizon}
        for name, incident in self._groups.items():
            active.setdefault(name, 0)  # an open incident is judged until it resolves
            labels.setdefault(name, next(iter(incident.labels), "region"))
        verdicts = judge_groups(
            members, active, labels, [d for d in recent if d.scope in AGGREGATE_SCOPES], grouping, self._watermark,
            open_affected={name: incident.affected for name, incident in self._groups.items() if incident.open},
        )
        events = []
        for verdict in verdicts:
            track = self._groups.setdefault(
                verdict.decision.key, Tracked.new("cluster", verdict.decision.key, CORRELATED)
            )
            event = observe(track, verdict.decision, self._group_lifecycle, verdict.summary, verdict.affected)
            if event is not None:
                events.append(event)
            track.codes = sorted(set(track.codes) | verdict.codes) if track.open else []
            if track.phase == "inactive":
                del self._groups[verdict.decision.key]
        verdict = judge_global(verdicts, [d for d in recent if d.scope == "global"], grouping, self._watermark)
        event = observe(self._global, verdict.decision, self._group_lifecycle, verdict.summary, verdict.affected)
        if event is not None:
            events.append(event)
        # An alert inhibited under an incident that has now resolved is paged by whoever muted it
        # (``alerting.stage.AlertStage``), once it is clear for ``pending_windows``: not here.
        return events

    # -- state -------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-safe snapshot: a restarted worker restores it and keeps its open alerts."""
        return {
            "version": STATE_VERSION,
            "watermark": list(self._watermark),
            "tracks": [t.to_state() for t in self._tracks.values()],
            "groups": [t.to_state() for t in self._groups.values()],
            "global": self._global.to_state(),
            "seen": [[leaf, *where] for leaf, where in self._seen.items()],
            "aggregates": [msgspec.to_builtins(d) for d in self._aggregates.values()],
            "silences": self.silences.to_state(),
            "suspects": dict(self._suspects),
            "summaries": {source: [[*slot, n] for slot, n in slots.items()] for source, slots in self._summaries.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"alert engine state version {state.get('version')!r}, expected {STATE_VERSION}")
        start, end = state["watermark"]
        self._watermark = (int(start), int(end))
        self._tracks = {t.fingerprint: t for t in map(Tracked.from_state, state["tracks"])}
        self._groups = {t.key: t for t in map(Tracked.from_state, state["groups"])}
        self._global = Tracked.from_state(state["global"])
        self._seen = {leaf: (label, group, int(end)) for leaf, label, group, end in state["seen"]}
        self._aggregates = {}
        for raw in state["aggregates"]:
            self._keep_aggregate(msgspec.convert(raw, Decision))
        self.silences.load_state(state["silences"])
        self._suspects = {fp: int(end) for fp, end in state.get("suspects", {}).items()}
        self._summaries = {source: {(label, group, int(end)): int(n) for label, group, end, n in slots}
                           for source, slots in state.get("summaries", {}).items()}


def save_state(engine: AlertEngine) -> dict[str, Any]:
    return engine.to_state()


def restore_engine(policy: AlertingPolicy, clock: Clock, state: dict[str, Any] | None) -> AlertEngine:
    """A new engine, with ``state`` (from ``save_state``) loaded when given."""
    engine = AlertEngine(policy, clock)
    if state:
        engine.load_state(state)
    return engine
