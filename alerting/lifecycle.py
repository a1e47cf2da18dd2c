"""The state machine of one alert: inactive -> pending -> firing -> resolved.

Hysteresis: it fires after ``pending_windows`` consecutive bad windows (fewer
for critical) and resolves only after ``resolve_windows`` consecutive clear
ones (good and below ``suspect_score``; or twice as many good ones), so a key
that flaps between good and bad neither pages on every bad window nor
resolves and re-fires. Windows are counted by ``window_end``
(event time): a replayed or duplicated decision for a window already seen
changes nothing, except that a window first judged good may be corrected to
bad (a group re-evaluated as more rooms of the same window arrive).

>>> from core.schemas import Decision
>>> policy = LifecyclePolicy(pending_windows=2, resolve_windows=2)
>>> track = Tracked.new("room", "room-1", "crash")
>>> def window(i, bad):
...     d = Decision(scope="room", key="room-1", kind="crash", window_start=i * 10_000,
...                  window_end=(i + 1) * 10_000, bad=bad)
...     event = observe(track, d, policy, summary="room-1: crash")
...     return track.phase, event and (event.status, event.starts_at, event.event_ts, event.ends_at)
>>> [window(i, bad) for i, bad in enumerate([True, True, False, True, False, False])]
[('pending', None), ('firing', ('firing', 0, 20000, None)), ('firing', None), ('firing', None), ('firing', None), ('inactive', ('resolved', 0, 60000, 40000))]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import msgspec

from alerting.identity import fingerprint
from alerting.policy import SEVERITY_RANK, LifecyclePolicy
from core.schemas import Alert, Decision, Evidence

Phase = Literal["inactive", "pending", "firing"]


@dataclass
class Tracked:
    """Everything remembered about one (scope, key, kind); JSON-safe via ``to_state``."""

    scope: str
    key: str
    kind: str
    fingerprint: str
    phase: Phase = "inactive"
    bad_streak: int = 0
    good_streak: int = 0
    clear_streak: int = 0  # the good windows of the good streak since its last suspect one (``LifecyclePolicy.clear``)
    onset_ms: int = 0  # window_start of the first bad window of this episode
    recovery_ms: int = 0  # window_start of the first good window of the current good streak
    last_window_end: int = 0
    last_bad: bool = False
    suspect_end: int = 0  # window_end of a good-but-suspect window just before this episode
    last_emitted_ms: int = 0  # event_ts of the last firing event (for renotify)
    # Its last firing event was muted (a wider alert or a silence held it): it
    # pages once no muter has held it for ``pending_windows`` window ends in a
    # row (``clear_steps`` counts them), as Alertmanager sends an alert whose
    # inhibitor resolved. Set through ``hold`` and ``release``.
    held: bool = False
    clear_steps: int = 0
    severity: str = "info"
    notified_severity: str = "info"
    summary: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    affected: list[str] = field(default_factory=list)
    # The keys this open alert holds back this episode (``alerting.inhibit.WideFirst``): an incident's, the
    # rooms of other groups failing with its codes; a platform's or version's, the version or platform
    # failing with its code. It names them among the keys it affects, since their own pages wait on it.
    held_keys: list[str] = field(default_factory=list)
    # The rooms an incident's firing events have named this episode: one that takes in a room it has not
    # named notifies again, since it holds that room's own page (``alerting.inhibit``).
    named: list[str] = field(default_factory=list)
    # An incident's error codes this episode (``alerting.correlate.Verdict.codes``): ``WideFirst`` keeps
    # rooms failing with one of them from paging beside it.
    codes: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, scope: str, key: str, kind: str) -> Tracked:
        return cls(scope=scope, key=key, kind=kind, fingerprint=fingerprint(scope, key, kind))

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tracked:
        return cls(**state)

    @property
    def open(self) -> bool:
        return self.phase == "firing"

    def alert(self, status: Literal["firing", "resolved"], event_ts: int) -> Alert:
        return Alert(
            fingerprint=self.fingerprint,
            status=status,
            scope=self.scope,  # type: ignore[arg-type]
            key=self.key,
            kind=self.kind,
            severity=self.severity,  # type: ignore[arg-type]
            starts_at=self.onset_ms,
            event_ts=event_ts,
            ends_at=self.recovery_ms if status == "resolved" else None,
            summary=self.summary,
            labels=dict(self.labels),
            evidence=msgspec.convert(self.evidence, list[Evidence]),
            affected=[*self.affected, *sorted(set(self.held_keys).difference(self.affected))],
        )


def _worse(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def observe(
    track: Tracked,
    decision: Decision,
    policy: LifecyclePolicy,
    summary: str,
    affected: list[str] | None = None,
) -> Alert | None:
    """Feed one window's verdict; return the alert event it causes, if any."""
    if decision.window_end < track.last_window_end:
        return None  # late: a newer window was already judged
    if decision.window_end == track.last_window_end and (not decision.bad or track.last_bad):
        return None  # duplicate (a replay) or a good verdict after a bad one for the same window
    track.last_window_end = decision.window_end
    track.last_bad = decision.bad
    if decision.bad:
        return _bad(track, decision, policy, summary, affected)
    return _good(track, decision, policy)


def _bad(
    track: Tracked, decision: Decision, policy: LifecyclePolicy, summary: str, affected: list[str] | None
) -> Alert | None:
    if track.phase == "inactive":
        track.phase = "pending"
        # The window right before counts as one pending window when it was
        # suspect, or when this verdict's evidence covers it (``since``).
        before = 0 < track.suspect_end == decision.window_start or 0 < decision.since < decision.window_start
        track.bad_streak = 1 if policy.suspect_score is not None and before else 0
        track.suspect_end = 0
        track.onset_ms = decision.window_start
        track.severity = "info"
        track.named, track.held_keys = [], []
    track.bad_streak += 1
    track.good_streak = track.clear_streak = 0
    # Severity only rises while an alert is open: a page escalates, it never quietly downgrades.
    track.severity = _worse(track.severity, decision.severity)
    track.summary = summary
    track.labels.update(decision.labels)
    track.evidence = [msgspec.to_builtins(e) for e in decision.evidence]
    if affected is not None:
        track.affected = list(affected)
    event_ts = decision.window_end
    if track.phase == "pending":
        if track.bad_streak >= policy.windows_to_fire(track.severity):
            track.phase = "firing"
            return _fire(track, event_ts)
        return None
    escalated = SEVERITY_RANK.get(track.severity, 0) > SEVERITY_RANK.get(track.notified_severity, 0)
    spread = not set(track.affected).union(track.held_keys) <= set(track.named)
    if escalated or spread or event_ts - track.last_emitted_ms >= policy.renotify_seconds * 1000:
        return _fire(track, event_ts)
    return None


def hold(track: Tracked, held: bool) -> None:
    """Whether a muter holds this open alert's page back as of now; clear window ends count afresh."""
    track.held, track.clear_steps = held, 0


def hold_for_wider(track: Tracked, policy: LifecyclePolicy) -> None:
    """``hold``, by a wider alert or incident: released after ``release_windows`` window ends, not
    ``pending_windows`` (the rooms of an incident that just resolved stay bad on its tail for a while).

    >>> track, policy = Tracked.new("room", "room-1", "crash"), LifecyclePolicy(pending_windows=2, release_windows=3)
    >>> hold_for_wider(track, policy)
    >>> [release(track, end, policy) is not None for end in (10_000, 20_000, 30_000)], track.held
    ([False, False, True], False)
    """
    hold(track, True)
    track.clear_steps = policy.pending_windows - max(policy.pending_windows, policy.release_windows)


def wait(track: Tracked, policy: LifecyclePolicy) -> None:
    """Hold this open alert's page for a verdict still to come (``alerting.inhibit.AwaitsWider``).

    Unlike a muter's hold, it pages at the first window end nothing holds it: its own pending windows
    are behind it already, so the wait costs one window, not ``pending_windows`` more.

    >>> track = Tracked.new("room", "room-1", "crash")
    >>> wait(track, LifecyclePolicy(pending_windows=2))
    >>> release(track, 10_000, LifecyclePolicy(pending_windows=2)) is not None, track.held
    (True, False)
    """
    hold(track, True)
    track.clear_steps = policy.pending_windows - 1


def release(track: Tracked, event_ts: int, policy: LifecyclePolicy) -> Alert | None:
    """One more window end in which no muter held this held alert; its firing event once there were enough.

    It pages after ``pending_windows`` such window ends in a row (a muter
    holding it again in between starts the count over, see ``hold``), or
    ``release_windows`` when a wider alert held it (``hold_for_wider``), and
    is no longer held once it has.

    >>> track = Tracked.new("room", "room-1", "crash")
    >>> hold(track, True)
    >>> [release(track, end, LifecyclePolicy(pending_windows=2)) is not None for end in (10_000, 20_000)], track.held
    ([False, True], False)
    """
    track.clear_steps += 1
    if track.clear_steps < policy.pending_windows:
        return None
    hold(track, False)
    return _fire(track, event_ts)


def _fire(track: Tracked, event_ts: int) -> Alert:
    track.last_emitted_ms = event_ts
    track.notified_severity = track.severity
    track.named = sorted(set(track.named).union(track.affected, track.held_keys))
    return track.alert("firing", event_ts)


def _good(track: Tracked, decision: Decision, policy: LifecyclePolicy) -> Alert | None:
    if track.phase == "pending":
        track.phase = "inactive"
        track.bad_streak = 0
        return None
    if track.phase != "firing":
        return None
    if track.good_streak == 0:
        track.recovery_ms = decision.window_start
    track.good_streak += 1
    track.clear_streak = track.clear_streak + 1 if policy.clear(decision.score) else 0
    if not policy.recovered(track.clear_streak, track.good_streak):
        return None
    return resolve(track, decision.window_end)


def resolve(track: Tracked, event_ts: int, ends_at: int | None = None) -> Alert:
    """Close a firing alert now (enough good windows, or its key went silent)."""
    if ends_at is not None:
        track.recovery_ms = ends_at
    event = track.alert("resolved", event_ts)
    track.phase = "inactive"
    track.bad_streak = track.good_streak = track.clear_streak = 0
    return event
