"""The engine: correlation into cluster/global incidents, inhibition, stale keys, state round trip."""

from __future__ import annotations

import json

import msgspec

from alerting.engine import AlertEngine, restore_engine, save_state
from alerting.policy import AlertingPolicy, GroupingPolicy, LifecyclePolicy
from core.schemas import Alert, Decision
from core.timeutil import ManualClock
from tests.alerting.helpers import T0, decision

POLICY = AlertingPolicy(
    lifecycle=LifecyclePolicy(pending_windows=2, resolve_windows=2, renotify_seconds=3600, stale_seconds=60),
    grouping=GroupingPolicy(min_rooms=5, min_share=0.2, global_min_groups=2),
)


def window(engine: AlertEngine, i: int, bad_rooms: dict[str, int], healthy: dict[str, int]) -> list[Alert]:
    """One window: per region, rooms 0..bad-1 are bad and the next ``healthy`` rooms are good."""
    decisions = []
    for region in sorted(set(bad_rooms) | set(healthy)):
        n_bad = bad_rooms.get(region, 0)
        n_all = n_bad + healthy.get(region, 0)
        decisions += [decision(f"{region}-room-{r}", i, r < n_bad, region=region) for r in range(n_all)]
    return engine.process(decisions)


def by_scope(events: list[Alert]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e.scope, []).append(e.status)
    return out


def test_many_rooms_in_a_region_make_one_cluster_incident_and_rooms_are_inhibited() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    first = window(engine, 0, {"eu-west": 8}, {"eu-west": 20, "us-east": 20})
    # rooms are pending (2 windows), the incident needs one window of 8/28 rooms bad
    assert by_scope(first) == {"cluster": ["firing"]}
    incident = first[0]
    assert incident.key == "eu-west" and incident.kind == "correlated"
    assert incident.affected == sorted(f"eu-west-room-{r}" for r in range(8))
    assert incident.summary.startswith("eu-west: 8 of 28 active rooms alerting (details_not_available x8): ")
    assert incident.summary.endswith("+3 more")
    assert incident.labels == {"region": "eu-west"}

    second = window(engine, 1, {"eu-west": 8}, {"eu-west": 20, "us-east": 20})
    rooms = [e for e in second if e.scope == "room"]
    assert len(rooms) == 8 and all(e.status == "firing" for e in rooms)  # recorded...
    reasons = {engine.inhibitor.mutes(e) for e in rooms}
    assert reasons == {f"inhibited by cluster incident eu-west ({incident.fingerprint})"}  # ...but not paged
    assert engine.inhibitor.mutes(incident) is None
    # Its codes, for WideFirst: the rooms' details_not_available, whichever region another such room is in.
    group = engine.open_group("eu-west")
    assert group is not None and group.codes == ["details_not_available"]


def test_few_rooms_or_a_small_share_stay_per_room() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    # 4 rooms: under min_rooms. Then 6 of 100: under min_share.
    events = window(engine, 0, {"eu-west": 4}, {"eu-west": 4}) + window(engine, 1, {"eu-west": 4}, {"eu-west": 4})
    assert by_scope(events) == {"room": ["firing"] * 4}
    assert all(engine.inhibitor.mutes(e) is None for e in events)
    engine = AlertEngine(POLICY, ManualClock(T0))
    events = window(engine, 0, {"us-east": 6}, {"us-east": 94}) + window(engine, 1, {"us-east": 6}, {"us-east": 94})
    assert by_scope(events) == {"room": ["firing"] * 6}


def test_several_regions_make_one_global_incident_that_inhibits_the_rest() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    events = window(engine, 0, {"eu-west": 6, "us-east": 7}, {"eu-west": 4, "us-east": 4, "ap-south": 10})
    assert by_scope(events) == {"cluster": ["firing", "firing"], "global": ["firing"]}
    glob = next(e for e in events if e.scope == "global")
    assert glob.key == "all"
    assert glob.affected[:2] == ["eu-west", "us-east"] and len(glob.affected) == 2 + 13
    assert glob.summary == "GLOBAL: 2 regions/clusters alerting (eu-west, us-east); 13 rooms affected"
    clusters = [e for e in events if e.scope == "cluster"]
    assert all(engine.inhibitor.mutes(c).startswith("inhibited by global incident") for c in clusters)  # type: ignore[union-attr]
    assert engine.inhibitor.mutes(glob) is None


def test_a_bad_global_window_alone_raises_the_global_incident() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    events = engine.process([decision("all", 0, True, scope="global", region=None, severity="critical")])
    assert [(e.scope, e.key, e.status, e.severity) for e in events] == [("global", "all", "firing", "critical")]
    assert events[0].summary.endswith("and the global window is bad")


def test_an_incident_lasts_until_the_rooms_it_named_recover() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    window(engine, 0, {"eu-west": 8}, {"eu-west": 2})
    window(engine, 1, {"eu-west": 8}, {"eu-west": 2})
    # All but two rooms recover: too few to open an incident, but it is the
    # same incident going on, not two new room pages.
    events = [e for i in range(2, 6) for e in window(engine, i, {"eu-west": 2}, {"eu-west": 8})]
    assert by_scope(events) == {"room": ["resolved"] * 6}
    incident = engine.open_group("eu-west")
    assert incident is not None and incident.affected == ["eu-west-room-0", "eu-west-room-1"]
    assert all(engine.inhibitor.mutes(e) is not None for e in events if e.status == "firing")
    # Once they recover too, it resolves, and so do they, without a page.
    events = [e for i in range(6, 9) for e in window(engine, i, {}, {"eu-west": 10})]
    assert by_scope(events) == {"room": ["resolved"] * 2, "cluster": ["resolved"]}
    assert engine.open_group("eu-west") is None


def test_a_room_that_starts_failing_as_its_regions_incident_ends_is_not_inhibited_by_it() -> None:
    # (A room muted under an incident that is still failing when it ends pages from the stage:
    # tests/streams/test_detection.py.)
    engine = AlertEngine(POLICY, ManualClock(T0))
    window(engine, 0, {"eu-west": 8}, {"eu-west": 2})
    window(engine, 1, {"eu-west": 8}, {"eu-west": 2})
    # A room the incident never named fails while the others recover.
    late = lambda i, bad: engine.process(  # noqa: E731
        [decision(f"eu-west-room-{r}", i, False, region="eu-west") for r in range(8)]
        + [decision("eu-west-room-late", i, bad, kind="crash", region="eu-west")])
    events = [e for i in range(2, 5) for e in late(i, True)]
    assert engine.open_group("eu-west") is None and any(e.scope == "cluster" and e.status == "resolved" for e in events)
    fired = [e for e in events if e.key == "eu-west-room-late" and e.status == "firing"]
    assert fired and all(engine.inhibitor.mutes(e) is None for e in fired[-1:])


def test_one_window_delivered_in_pieces_counts_once() -> None:
    """A worker calls process per message: the group verdict of one window is revised, not recounted."""
    engine = AlertEngine(POLICY, ManualClock(T0))
    events = []
    for r in range(10):
        events += engine.process([decision(f"room-{r}", 0, r < 6)])
    assert by_scope(events) == {"cluster": ["firing"]}
    assert engine._groups["eu-west"].bad_streak == 1


def test_a_key_that_goes_silent_resolves_as_stale() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    engine.process([decision("room-1", 0, True, region=None)])
    fired = engine.process([decision("room-1", 1, True, region=None)])
    assert [e.status for e in fired] == ["firing"]
    events = []
    for i in range(2, 10):  # room-1 closed; another room keeps event time moving
        events += engine.process([decision("room-2", i, False, region=None)])
    stale = [e for e in events if e.key == "room-1"]
    assert [e.status for e in stale] == ["resolved"]
    assert stale[0].ends_at == fired[0].event_ts


def test_state_round_trip_keeps_open_alerts_and_json_is_enough() -> None:
    clock = ManualClock(T0)
    engine = AlertEngine(POLICY, clock)
    window(engine, 0, {"eu-west": 8}, {"eu-west": 2})
    window(engine, 1, {"eu-west": 8}, {"eu-west": 2})
    engine.silences.add(["region=us-east"], ends_at_ms=T0 + 3_600_000, comment="deploy")
    state = json.loads(json.dumps(save_state(engine)))  # must survive a JSON store (Faust table, file)
    restored = restore_engine(POLICY, clock, state)
    assert save_state(restored) == state
    assert {t.fingerprint for t in restored.open_alerts()} == {t.fingerprint for t in engine.open_alerts()}
    # Same input after the restart, same output as the engine that never stopped.
    later = [
        window(e, 2, {"eu-west": 0}, {"eu-west": 10}) + window(e, 3, {"eu-west": 0}, {"eu-west": 10})
        for e in (engine, restored)
    ]
    assert later[0] == later[1]
    assert by_scope(later[1]) == {"room": ["resolved"] * 8, "cluster": ["resolved"]}


def test_restored_engine_does_not_refire_open_alerts() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    engine.process([decision("room-1", 0, True)])
    engine.process([decision("room-1", 1, True)])
    restored = restore_engine(POLICY, ManualClock(T0), save_state(engine))
    assert restored.process([decision("room-1", 2, True)]) == []
    assert restored.process([decision("room-1", 1, True)]) == []  # a replayed window


def test_bad_state_version_is_refused() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    state = save_state(engine) | {"version": 99}
    try:
        engine.load_state(state)
    except ValueError as exc:
        assert "version 99" in str(exc)
    else:
        raise AssertionError("a state of another version was accepted")


def test_a_room_on_a_lagging_partition_is_not_resolved_as_stale() -> None:
    wall = [0.0]
    engine = AlertEngine(AlertingPolicy(lifecycle=LifecyclePolicy(pending_windows=1, stale_seconds=60)),
                         ManualClock(T0), wall=lambda: wall[0])
    statuses = []
    # The slow partition's room fires at window 0; the fast partition races 30 windows (5 minutes) ahead.
    engine.note_progress({"room-health:0": T0 + 10_000})
    statuses += [a.status for a in engine.process([decision("slow-room", 0, True)])]
    for window in range(1, 30):
        engine.note_progress({"room-health:1": T0 + (window + 1) * 10_000})
        engine.process([decision("fast-room", window, False)])
    assert statuses == ["firing"] and [t.key for t in engine.open_alerts()] == ["slow-room"]
    # Once the slow partition has been silent for a while (wall time), it no longer holds staleness back.
    wall[0] = 31.0
    engine.note_progress({"room-health:1": T0 + 31 * 10_000})
    resolved = engine.process([decision("fast-room", 30, False)])
    assert [(a.key, a.status) for a in resolved] == [("slow-room", "resolved")]


def _fired_at(engine: AlertEngine, windows: list[tuple[bool, float]]) -> list[int]:
    """Windows (index) in which room-1 fired, for a series of (bad, score) verdicts."""
    return [i for i, (bad, score) in enumerate(windows)
            for event in engine.process([decision("room-1", i, bad, score=score)]) if event.status == "firing"]


def test_a_suspect_window_right_before_a_bad_one_counts_as_pending() -> None:
    # pending_windows=2: a bad window alone does not fire, a suspect one before it makes two.
    assert _fired_at(AlertEngine(POLICY, ManualClock(T0)), [(False, 0.1), (True, 0.6), (True, 0.6)]) == [2]
    assert _fired_at(AlertEngine(POLICY, ManualClock(T0)), [(False, 0.45), (True, 0.6), (True, 0.6)]) == [1]
    # Not adjacent: a quiet window in between breaks the chain.
    assert _fired_at(AlertEngine(POLICY, ManualClock(T0)),
                     [(False, 0.45), (False, 0.1), (True, 0.6), (False, 0.1)]) == []


def test_suspect_windows_can_be_turned_off() -> None:
    from dataclasses import replace

    off = replace(POLICY, lifecycle=replace(POLICY.lifecycle, suspect_score=None))
    assert _fired_at(AlertEngine(off, ManualClock(T0)), [(False, 0.45), (True, 0.6), (True, 0.6)]) == [2]


def test_a_verdict_whose_evidence_covers_the_window_before_counts_it_as_pending() -> None:
    from msgspec.structs import replace

    def reaching_back(window: int, windows_back: int) -> Decision:
        bad = decision("room-1", window, True, score=0.6)
        return replace(bad, since=bad.window_start - windows_back * 10_000)

    engine = AlertEngine(POLICY, ManualClock(T0))
    # The window before scored 0.2: not suspect on its own.
    assert engine.process([decision("room-1", 0, False, score=0.2)]) == []
    assert [e.status for e in engine.process([reaching_back(1, 1)])] == ["firing"]
    # A verdict resting on its own window only (since = 0) still waits for a second bad window.
    alone = AlertEngine(POLICY, ManualClock(T0))
    assert _fired_at(alone, [(False, 0.2), (True, 0.6), (True, 0.6)]) == [2]
    # Turning suspect windows off turns this off too: only bad windows of its own count.
    from dataclasses import replace as replace_policy

    off = AlertEngine(replace_policy(POLICY, lifecycle=replace_policy(POLICY.lifecycle, suspect_score=None)),
                      ManualClock(T0))
    off.process([decision("room-1", 0, False, score=0.2)])
    assert off.process([reaching_back(1, 1)]) == []


def test_a_suspect_window_survives_a_restart() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    engine.process([decision("room-1", 0, False, score=0.45)])
    restored = restore_engine(POLICY, ManualClock(T0), json.loads(json.dumps(save_state(engine))))
    assert [e.status for e in restored.process([decision("room-1", 1, True, score=0.6)])] == ["firing"]


def test_the_alert_of_a_sampled_window_says_its_counts_are_sampled() -> None:
    engine = AlertEngine(POLICY, ManualClock(T0))
    events = []
    for i in range(3):
        sampled = msgspec.structs.replace(decision("storm-room", i, True, region=None), error_keep=1 / 64)
        events += engine.process([sampled])
    firing = [e for e in events if e.status == "firing"]
    assert firing and firing[0].key == "storm-room"
    assert firing[0].summary.endswith("; counts sampled: 1 in 64 error reports kept, weighted")
