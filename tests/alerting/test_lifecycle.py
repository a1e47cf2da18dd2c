"""Alert lifecycle: pending, firing, resolve, hysteresis, flapping, renotify, held pages, fingerprints."""

from __future__ import annotations

from alerting.identity import fingerprint
from alerting.lifecycle import Tracked, hold, observe, release
from alerting.policy import LifecyclePolicy
from core.schemas import Alert
from tests.alerting.helpers import T0, WINDOW_MS, decision


def run(
    verdicts: list[bool], policy: LifecyclePolicy, severity: str = "warning"
) -> tuple[Tracked, list[tuple[int, Alert]]]:
    track = Tracked.new("room", "room-17", "details_not_available")
    events = []
    for window, bad in enumerate(verdicts):
        event = observe(track, decision("room-17", window, bad, severity=severity), policy, summary="s")
        if event is not None:
            events.append((window, event))
    return track, events


def test_pending_then_firing_after_pending_windows() -> None:
    track, events = run([True, True, True], LifecyclePolicy(pending_windows=3))
    assert [(w, e.status) for w, e in events] == [(2, "firing")]
    firing = events[0][1]
    assert firing.starts_at == T0  # onset is the first bad window, not the window that fired
    assert firing.event_ts == T0 + 3 * WINDOW_MS
    assert firing.fingerprint == fingerprint("room", "room-17", "details_not_available")


def test_pending_that_recovers_never_fires() -> None:
    track, events = run([True, False, True, False], LifecyclePolicy(pending_windows=2))
    assert events == []
    assert track.phase == "inactive"


def test_critical_fires_after_one_window() -> None:
    _, events = run([True], LifecyclePolicy(pending_windows=2, critical_pending_windows=1), severity="critical")
    assert [(w, e.status, e.severity) for w, e in events] == [(0, "firing", "critical")]


def test_resolves_after_resolve_windows_good_ones() -> None:
    _, events = run([True, True, False, False, False], LifecyclePolicy(pending_windows=2, resolve_windows=3))
    assert [(w, e.status) for w, e in events] == [(1, "firing"), (4, "resolved")]
    resolved = events[1][1]
    assert resolved.ends_at == T0 + 2 * WINDOW_MS  # start of the first good window
    assert resolved.starts_at == events[0][1].starts_at


def test_hysteresis_flapping_neither_resolves_nor_repages() -> None:
    verdicts = [True, True] + [False, False, True] * 10  # never three good windows in a row
    track, events = run(verdicts, LifecyclePolicy(pending_windows=2, resolve_windows=3))
    assert [e.status for _, e in events] == ["firing"]
    assert track.phase == "firing"


def test_a_lull_still_suspect_does_not_resolve_but_a_long_one_does() -> None:
    policy = LifecyclePolicy(pending_windows=2, resolve_windows=3, suspect_score=0.4)
    track = Tracked.new("room", "room-17", "details_not_available")
    # Fires, then a lull: good windows that still score as suspect, then clear ones.
    scores = [None, None, 0.6, 0.5, 0.45, 0.1, 0.1, 0.1]
    statuses = []
    for window, score in enumerate(scores):
        verdict = decision("room-17", window, score is None, score=score)
        event = observe(track, verdict, policy, summary="s")
        statuses.append(event.status if event else None)
    # Three good windows in a row were not enough while they were suspect; three clear ones after them are.
    assert statuses == [None, "firing", None, None, None, None, None, "resolved"]
    # Six good windows resolve whatever they scored: a baseline still catching up does not keep it open.
    suspect_lull = Tracked.new("room", "room-17", "details_not_available")
    statuses = [getattr(observe(suspect_lull, decision("room-17", w, w < 2, score=0.9 if w < 2 else 0.5), policy,
                                summary="s"), "status", None) for w in range(8)]
    assert statuses == [None, "firing", None, None, None, None, None, "resolved"]


def test_flapping_below_pending_never_pages() -> None:
    _, events = run([True, False] * 20, LifecyclePolicy(pending_windows=2))
    assert events == []


def test_renotify_after_interval_in_event_time() -> None:
    # 10 s windows, renotify every 60 s: fires at window 1, re-notifies at window 7, 13.
    _, events = run([True] * 14, LifecyclePolicy(pending_windows=2, renotify_seconds=60))
    assert [w for w, _ in events] == [1, 7, 13]
    assert len({e.starts_at for _, e in events}) == 1


def test_escalation_notifies_immediately_and_never_downgrades() -> None:
    policy = LifecyclePolicy(pending_windows=2, renotify_seconds=3600)
    track = Tracked.new("room", "room-17", "details_not_available")
    severities = ["warning", "warning", "warning", "critical", "warning"]
    events = [observe(track, decision("room-17", w, True, severity=s), policy, "s") for w, s in enumerate(severities)]
    assert [e and (e.status, e.severity) for e in events] == [
        None,
        ("firing", "warning"),
        None,
        ("firing", "critical"),
        None,
    ]
    assert track.severity == "critical"


def test_an_incident_that_takes_in_rooms_it_has_not_named_notifies_again() -> None:
    # Its rooms' own pages are held by it: room-11 failing 25 s after the incident paged was named nowhere.
    policy = LifecyclePolicy(pending_windows=2, renotify_seconds=3600)
    track = Tracked.new("cluster", "eu-west", "correlated")
    rooms = [["room-8"], ["room-8", "room-10"], ["room-10", "room-8"], ["room-10", "room-11", "room-8"],
             ["room-10", "room-8"], ["room-10", "room-11"]]
    events = [observe(track, decision("eu-west", w, True), policy, "s", affected) for w, affected in enumerate(rooms)]
    assert [e and e.affected for e in events] == [None, ["room-8", "room-10"], None, ["room-10", "room-11", "room-8"],
                                                  None, None]
    assert track.named == ["room-10", "room-11", "room-8"]
    track.held_keys.append("room-3")  # held by it in another region (WideFirst): named at its next window
    again = observe(track, decision("eu-west", 6, True), policy, "s", ["room-10", "room-11"])
    assert again is not None and again.affected == ["room-10", "room-11", "room-3"]
    restored = Tracked.from_state(track.to_state())
    assert (restored.named, restored.held_keys) == (track.named, ["room-3"])


def test_duplicate_and_late_windows_change_nothing() -> None:
    policy = LifecyclePolicy(pending_windows=2)
    track = Tracked.new("room", "room-17", "details_not_available")
    assert observe(track, decision("room-17", 0, True), policy, "s") is None
    assert observe(track, decision("room-17", 0, True), policy, "s") is None  # replayed: still one bad window
    assert track.bad_streak == 1
    assert observe(track, decision("room-17", 1, True), policy, "s") is not None
    assert observe(track, decision("room-17", 0, False), policy, "s") is None  # late
    assert track.phase == "firing" and track.good_streak == 0


def test_a_new_episode_has_a_new_start_and_the_same_fingerprint() -> None:
    _, events = run(
        [True, True, False, False, False, True, True], LifecyclePolicy(pending_windows=2, resolve_windows=3)
    )
    statuses = [(e.status, e.starts_at) for _, e in events]
    assert statuses == [("firing", T0), ("resolved", T0), ("firing", T0 + 5 * WINDOW_MS)]
    assert len({e.fingerprint for _, e in events}) == 1


def test_fingerprint_is_stable_and_distinct() -> None:
    assert fingerprint("room", "r1", "crash") == fingerprint("room", "r1", "crash")
    assert fingerprint("room", "r1", "crash") == "b31b3ab5dd04fa77"  # pinned: a change would orphan every open alert
    keys = {fingerprint(s, k, c) for s in ("room", "service") for k in ("r1", "r2") for c in ("crash", "timeout")}
    assert len(keys) == 8
    assert fingerprint("room", "a,b", "c") != fingerprint("room", "a", "b,c")
    assert fingerprint("room", "a\x00b", "c") != fingerprint("room", "a", "b\x00c")


def test_firing_event_carries_the_3am_summary() -> None:
    from alerting.summary import decision_summary

    policy = LifecyclePolicy(pending_windows=1)
    track = Tracked.new("room", "room-17", "details_not_available")
    d = decision("room-17", 0, True)
    event = observe(track, d, policy, decision_summary(d))
    assert event is not None
    assert event.summary == "room-17: details_not_available reports 42x baseline (1,260 clients in 10 s)"
    assert event.labels == {"region": "eu-west"} and event.evidence[0].observed == 1260


def test_a_held_alert_pages_after_pending_windows_clear_window_ends_and_is_let_go() -> None:
    policy = LifecyclePolicy(pending_windows=3)
    track, events = run([True, True, True], policy)
    fired = events[0][1]
    hold(track, True)
    ends = [T0 + (4 + step) * WINDOW_MS for step in range(3)]
    assert [release(track, end, policy) for end in ends[:2]] == [None, None] and track.held
    page = release(track, ends[2], policy)
    assert page is not None and not track.held and track.clear_steps == 0
    # The same open alert, paged now: same fingerprint and onset, a new event time.
    assert (page.status, page.fingerprint, page.starts_at, page.event_ts) == (
        "firing", fired.fingerprint, fired.starts_at, ends[2])
    assert track.last_emitted_ms == ends[2]  # re-notification counts from this page


def test_holding_again_starts_the_clear_count_over() -> None:
    policy = LifecyclePolicy(pending_windows=2)
    track, _ = run([True, True], policy)
    hold(track, True)
    assert release(track, T0 + 3 * WINDOW_MS, policy) is None
    hold(track, True)  # a muter held it again: one clear window end is not enough any more
    assert release(track, T0 + 5 * WINDOW_MS, policy) is None
    assert release(track, T0 + 6 * WINDOW_MS, policy) is not None
    hold(track, False)
    assert (track.held, track.clear_steps) == (False, 0)
