"""The alert stage: who pages (inhibition, WideFirst, OnePagePerKey, silences), held pages, restarts."""

from __future__ import annotations

from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted
from core.schemas import Decision
from tests.alerting.helpers import T0, decision, judged


def verdict(scope: str, key: str, kind: str, window: int, bad: bool) -> Decision:
    """A critical verdict on window ``window`` (10 s windows from T0); a good one scores as a clear window."""
    return Decision(scope=scope, key=key, kind=kind, window_start=T0 + window * 10_000,  # type: ignore[arg-type]
                    window_end=T0 + (window + 1) * 10_000, bad=bad, severity="critical", score=0.9 if bad else 0.1)


def test_while_a_version_crashes_its_rooms_crashes_and_generic_ratios_do_not_page() -> None:
    stage = AlertStage(AlertingPolicy())
    events: list[Emitted] = []
    for window in range(3):
        events += stage.step([verdict("app_version", "7.41.0", "crash", window, True),
                              verdict("room", "room-1", "crash", window, True),
                              verdict("room", "room-2", "error_ratio", window, True),
                              verdict("room", "room-3", "details_not_available", window, True)])
    firing = [e for e in events if e.alert.status == "firing"]
    assert {(e.alert.key, e.alert.kind) for e in firing if e.muted is None} == {
        ("7.41.0", "crash"), ("room-3", "details_not_available")}
    muted = {e.alert.key: e.muted for e in firing if e.muted is not None}
    assert set(muted) == {"room-1", "room-2"}
    assert all("app_version 7.41.0 crash" in (reason or "") for reason in muted.values())


def test_a_room_failing_in_several_ways_pages_once() -> None:
    stage = AlertStage(AlertingPolicy())
    events: list[Emitted] = []
    for window in range(4):
        # The generic ratio goes bad first, then two error codes one window later.
        events += stage.step([verdict("room", "room-3", "error_ratio", window, True),
                              verdict("room", "room-3", "details_not_available", window, window >= 1),
                              verdict("room", "room-3", "audio_dropout", window, window >= 1)])
    firing = [e for e in events if e.alert.status == "firing"]
    assert {e.alert.kind for e in firing} == {"error_ratio", "details_not_available", "audio_dropout"}
    assert [e.alert.kind for e in firing if e.muted is None] == ["error_ratio"]
    assert all("error_ratio alert" in (e.muted or "") for e in firing if e.alert.kind != "error_ratio")


def test_a_muted_room_still_failing_pages_once_the_wide_incident_resolves() -> None:
    policy = AlertingPolicy()
    stage = AlertStage(policy)
    paged_at: list[tuple[str, int]] = []
    version_bad = [True] * 3 + [False] * (policy.lifecycle.resolve_windows + policy.lifecycle.release_windows + 2)
    for window, bad_version in enumerate(version_bad):
        events = stage.step([verdict("app_version", "7.41.0", "crash", window, bad_version),
                             verdict("room", "room-1", "crash", window, True)])
        paged_at += [(e.alert.key, window) for e in events if e.alert.status == "firing" and e.muted is None]
    resolved_window = 3 + policy.lifecycle.resolve_windows - 1
    # The room's crash was muted under the version's; it pages (once) after
    # being clear of the muter for release_windows window ends, counting the
    # one in which the version resolved (not on the version's tail, two windows after).
    assert paged_at == [("7.41.0", 0), ("room-1", resolved_window + policy.lifecycle.release_windows - 1)]


def test_a_room_muted_under_a_global_incident_pages_once_it_resolves_if_still_failing() -> None:
    policy = AlertingPolicy()
    stage = AlertStage(policy)
    pages: list[tuple[str, str, int]] = []
    resolved_at = None
    for window in range(30):
        # Eight rooms in each of two regions fail for two windows (two cluster incidents, one global);
        # one ap-south room, too few to make an incident of its own, fails throughout.
        batch = [decision(f"{region}-room-{r}", window, r < 8 and window < 2, severity="critical", region=region)
                 for region in ("eu-west", "us-east") for r in range(20)]
        batch += [decision(f"ap-south-room-{r}", window, r == 0, kind="crash", severity="critical", region="ap-south")
                  for r in range(20)]
        for emitted in stage.step(batch):
            if emitted.alert.scope == "global" and emitted.alert.status == "resolved":
                resolved_at = window
            if emitted.alert.status == "firing" and emitted.muted is None:
                pages.append((emitted.alert.scope, emitted.alert.key, window))
    assert pages[0] == ("global", "all", 0) and resolved_at is not None
    # The global page covered everything; the ap-south room pages once it has been clear of the
    # incident for release_windows window ends (counting the one it resolved in), and only it.
    assert pages[1:] == [("room", "ap-south-room-0", resolved_at + policy.lifecycle.release_windows - 1)]


def test_a_held_page_survives_a_restart() -> None:
    policy = AlertingPolicy()
    stage = AlertStage(policy)

    def step(stage: AlertStage, window: int, bad_version: bool) -> list[Emitted]:
        return stage.step([verdict("app_version", "7.41.0", "crash", window, bad_version),
                           verdict("room", "room-1", "crash", window, True)])

    for window in range(3):
        step(stage, window, True)
    restored = AlertStage(policy, stage.to_state())
    later = [e for window in range(3, 24) for e in step(restored, window, False)]
    assert [e.alert.key for e in later if e.alert.status == "firing" and e.muted is None] == ["room-1"]


def test_when_a_rooms_page_resolves_its_other_alerts_do_not_page_again() -> None:
    stage = AlertStage(AlertingPolicy())
    paged_kinds: list[str] = []
    for window in range(12):
        # volume pages first and recovers at window 5; the ratio's tail lasts to window 8.
        events = stage.step([verdict("room", "room-3", "volume", window, window < 5),
                             verdict("room", "room-3", "error_ratio", window, 1 <= window < 8)])
        paged_kinds += [e.alert.kind for e in events if e.alert.status == "firing" and e.muted is None]
    assert paged_kinds == ["volume"]


def test_a_held_alert_of_a_room_that_went_silent_does_not_page() -> None:
    stage = AlertStage(AlertingPolicy())
    paged: list[str] = []
    for window in range(10):
        # The room closes (no more windows) while the version's incident is open.
        batch = [verdict("app_version", "7.41.0", "crash", window, window < 4)]
        batch += [verdict("room", "room-1", "crash", window, True)] if window < 3 else []
        paged += [e.alert.key for e in stage.step(batch) if e.alert.status == "firing" and e.muted is None]
    assert paged == ["7.41.0"]


def test_a_silenced_alert_still_failing_pages_once_the_silence_ends() -> None:
    policy = AlertingPolicy()
    stage = AlertStage(policy)
    # Silences live in the stage, on its event-time clock: the one place a page is muted.
    stage.engine.silences.add(["key=room-1"], starts_at_ms=T0, ends_at_ms=T0 + 40_000, comment="maintenance")
    events = [(window, e) for window in range(8) for e in stage.step([verdict("room", "room-1", "crash", window, True)])]
    # The silence ends with window 2; clear from window 3 on, it pages after pending_windows of them.
    assert [(window, e.alert.status) for window, e in events] == [
        (0, "firing"), (3 + policy.lifecycle.pending_windows - 1, "firing")]
    assert (events[0][1].muted or "").endswith("(maintenance)") and events[1][1].muted is None


def test_a_held_alert_muted_again_counts_its_clear_windows_afresh() -> None:
    policy = AlertingPolicy()
    stage = AlertStage(policy)
    silences = stage.engine.silences
    silences.add(["key=room-1"], starts_at_ms=T0, ends_at_ms=T0 + 40_000)
    silences.add(["key=room-1"], starts_at_ms=T0 + 50_000, ends_at_ms=T0 + 70_000)
    paged = [window for window in range(10) for e in stage.step([verdict("room", "room-1", "crash", window, True)])
             if e.alert.status == "firing" and e.muted is None]
    # Clear in window 3, held again in 4 and 5, clear in 6 and 7: one page, at 7 (not at 6).
    assert paged == [6 + policy.lifecycle.pending_windows - 1]


def _pages(version: list[tuple[float, bool, float]], room_clients: float, windows: int) -> list[tuple[str, int]]:
    """(key, window) of every page when a version's crash verdicts are ``version`` (error clients of 5,000,
    bad, score) per window and room-1 (1,000 listeners) is bad for crashes with ``room_clients`` throughout."""
    stage = AlertStage(AlertingPolicy())
    paged: list[tuple[str, int]] = []
    for window in range(windows):
        clients, bad, score = version[min(window, len(version) - 1)]
        events = stage.step([judged("app_version", "7.40.2", window, clients, 5_000, bad=bad, kind="crash", score=score),
                             judged("room", "room-1", window, room_clients, 1_000, bad=True, kind="crash",
                                    labels={"region": "eu-west"})])
        paged += [(e.alert.key, window) for e in events if e.alert.status == "firing" and e.muted is None]
    return paged


def test_a_room_waits_a_window_for_the_release_whose_crashes_reach_past_it() -> None:
    # The release's 150 crash clients are short of proof in window 0 and proven in window 1; the room's
    # 40 cannot be all of them, so the room waits, and then its page is the release's.
    assert _pages([(150, False, 0.6), (400, True, 0.95)], room_clients=40, windows=4) == [("7.40.2", 1)]


def test_a_room_whose_wider_verdict_never_comes_pages_one_window_late() -> None:
    assert _pages([(150, False, 0.6), (5, False, 0.1)], room_clients=40, windows=4) == [("room-1", 1)]


def test_a_room_holding_most_of_its_releases_excess_does_not_wait() -> None:
    # 60 crash clients on the release, 50 of them in the room: the room is the incident.
    assert _pages([(60, False, 0.6)], room_clients=50, windows=3) == [("room-1", 0)]


def test_a_room_does_not_wait_on_a_release_scoring_below_suspect() -> None:
    assert _pages([(150, False, 0.2)], room_clients=40, windows=3) == [("room-1", 0)]


def test_rooms_that_look_like_a_releases_symptoms_wait_for_it_though_they_explain_it_for_now() -> None:
    # Three rooms hold 106 of the release's 108 crash clients: short of the noise margin, so they explain
    # it in window 0, yet its excess is nearly all theirs. In window 1 crashes spread past them.
    stage = AlertStage(AlertingPolicy())
    paged: list[tuple[str, int]] = []
    for window, version_clients in enumerate((108, 140, 160)):
        rooms = [judged("room", f"room-{i}", window, clients, 1_126, bad=True, kind="crash", baseline=0.0008,
                        labels={"region": "eu-west"}, score=0.7) for i, clients in enumerate((40, 36, 30))]
        events = stage.step([*rooms,
                             judged("app_version", "7.40.2", window, version_clients, 9_776, bad=True, kind="crash",
                                    baseline=0.0008, score=0.8),
                             judged("global", "all", window, version_clients + 30, 47_000, bad=False, kind="crash",
                                    baseline=0.0008, score=0.3)])
        paged += [(e.alert.key, window) for e in events if e.alert.status == "firing" and e.muted is None]
    assert paged == [("7.40.2", 1)]
