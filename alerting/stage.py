"""The alert stage: decisions in, alert events out, each with whether it may page.

``AlertStage.step(decisions)`` feeds one batch of decisions (one window end)
to the one ``AlertEngine`` and returns its alert events as ``Emitted``: the
event and, when it must not page, why (``muted``). Every event is recorded
(alerts topic, ClickHouse); the dispatcher pages only the unmuted ones. The
stage is the one place that applies the muters, wider reasons first:
inhibition by a cluster or global incident, silences, maintenance windows
(``alerting.maintenance``), the silences added from the command line
(``alerting.silence_store``), ``WideFirst``, ``AwaitsWider``,
``OnePagePerKey`` (``alerting.inhibit``). A resolved is never muted: it goes
where its firing went (the nflog decides).

Time is event time: the stage's ``EventClock`` stands at the newest window
end seen, so silences and the notification log age as the data does, live
or in a replay, never by wall time.

A firing alert muted by a wider alert or a silence is held. Once it has been
judged bad with no muter holding it for ``pending_windows`` window ends
(``release_windows``, two minutes, after a wider alert), the stage emits its
firing event again, and that one pages (``alerting.lifecycle.release``): a
room still failing after its region's incident resolved must not wait for
the re-notification interval, nor page on the incident's tail.

>>> from core.schemas import Decision
>>> stage = AlertStage(AlertingPolicy())
>>> def verdict(kind, window):
...     return Decision(scope="room", key="room-3", kind=kind, window_start=window * 10_000,
...                     window_end=(window + 1) * 10_000, bad=True, severity="warning")
>>> for window in range(2):
...     for e in stage.step([verdict("crash", window), verdict("error_ratio", window)]):
...         print(e.alert.kind, e.alert.status, e.muted is None, stage.clock.now_ms())
crash firing True 20000
error_ratio firing False 20000

The room's specific ``crash`` alert pages; its generic ``error_ratio`` alert
is recorded, muted while the specific one fires (``OnePagePerKey``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alerting.engine import AlertEngine, restore_engine
from alerting.inhibit import AwaitsWider, Inhibitor, OnePagePerKey, WideFirst
from alerting.lifecycle import Tracked, hold, hold_for_wider, release, wait
from alerting.maintenance import Maintenance
from alerting.muter import Muter
from alerting.policy import AlertingPolicy
from alerting.silence_store import SilenceFile
from core.schemas import Alert, Decision, LeafSummary


class EventClock:
    """``Clock`` at the newest window end seen; it never goes back.

    >>> clock = EventClock(10_000)
    >>> clock.advance_to(30_000); clock.advance_to(20_000); clock.now_ms()
    30000
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, ms: int) -> None:
        self._now = max(self._now, ms)


@dataclass(frozen=True)
class Emitted:
    """An alert event and, when it must not page, why (inhibited by a wider alert, silenced)."""

    alert: Alert
    muted: str | None = None


class AlertStage:
    """The one ``AlertEngine`` that sees every decision, driven by event time, and who gets paged.

    ``state`` is a previous stage's ``to_state()``: a restarted worker keeps its
    open and held alerts, and its clock restarts where the data was.
    """

    def __init__(self, policy: AlertingPolicy, state: dict[str, Any] | None = None) -> None:
        self.clock = EventClock(int(state["watermark"][1]) if state else 0)
        self.engine: AlertEngine = restore_engine(policy, self.clock, state)
        # Wider reasons first: an alert muted by both is held for the wider one.
        self._muters: list[Muter] = [*self.engine.muters, Maintenance(policy.maintenance, self.clock)]
        if policy.silences_path is not None:
            self._muters.append(SilenceFile(policy.silences_path, self.clock))
        self._muters += [WideFirst(self.engine), AwaitsWider(self.engine, policy.grouping.await_wider_windows),
                         OnePagePerKey(self.engine)]

    def step(self, decisions: Sequence[Decision], summaries: Sequence[LeafSummary] = ()) -> list[Emitted]:
        """Feed one batch of decisions (one window end); return its alert events, each with its mute reason.

        ``summaries``: the ``LeafSummary`` of each detector partition that
        filtered its leaf decisions (``alerting.forward``), as of this batch.
        """
        if not decisions and not summaries:
            return []
        self.clock.advance_to(max([d.window_end for d in decisions] + [s.watermark[1] for s in summaries]))
        emitted: list[Emitted] = []
        fresh: dict[str, Muter | None] = {}  # fingerprint of a firing event -> the muter that stopped its page
        for alert in self.engine.process(decisions, summaries):
            if alert.status == "resolved":
                emitted.append(Emitted(alert))
                continue
            muter, reason = self._verdict(alert)
            fresh[alert.fingerprint] = muter
            emitted.append(Emitted(alert, reason))
        for track in self.engine.open_alerts():
            if track.fingerprint in fresh:
                self._keep_back(track, fresh[track.fingerprint])
            elif track.held:
                emitted.extend(self._release(track))
        return emitted

    def _release(self, track: Tracked) -> list[Emitted]:
        now = self.clock.now_ms()
        if not (track.last_bad and track.last_window_end == now):
            return []  # only a key still judged bad right now pages (not a closed room awaiting its stale expiry)
        muter, _ = self._verdict(track.alert("firing", now))
        if muter is not None:
            self._keep_back(track, muter)
            return []
        event = release(track, now, self.engine.policy.lifecycle)
        return [] if event is None else [Emitted(event)]

    def _keep_back(self, track: Tracked, muter: Muter | None) -> None:
        if isinstance(muter, AwaitsWider):
            wait(track, self.engine.policy.lifecycle)
        elif isinstance(muter, (Inhibitor, WideFirst)):
            hold_for_wider(track, self.engine.policy.lifecycle)
        else:
            hold(track, _holds(muter))

    def _verdict(self, alert: Alert) -> tuple[Muter | None, str | None]:
        """The first muter that stops this firing event's page, and its reason; (None, None) when it pages."""
        for muter in self._muters:
            reason = muter.mutes(alert)
            if reason is not None:
                return muter, reason
        return None, None

    def to_state(self) -> dict[str, Any]:
        return self.engine.to_state()


def _holds(muter: Muter | None) -> bool:
    # Held only by a wider alert or a silence: muted under an earlier alert
    # of its own key, the key has had its page.
    return muter is not None and not isinstance(muter, OnePagePerKey)


def by_window_end(decisions: Iterable[Decision]) -> list[list[Decision]]:
    """Split decisions into one batch per window end, oldest first (stable within a batch).

    A worker catching up receives many windows at once; stepping the stage
    window by window keeps what pages the same as live.

    >>> d = lambda key, end: Decision(scope="room", key=key, kind="crash", window_start=end - 10, window_end=end, bad=False)
    >>> [[x.key for x in batch] for batch in by_window_end([d("a", 20), d("b", 10), d("c", 20)])]
    [['b'], ['a', 'c']]
    """
    batches: dict[int, list[Decision]] = {}
    for decision in decisions:
        batches.setdefault(decision.window_end, []).append(decision)
    return [batches[end] for end in sorted(batches)]
