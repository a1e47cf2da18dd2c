"""The forwarding rule: the alert events are the same whether or not good room decisions are filtered."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgspec

from alerting.forward import DecisionForwarder
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted
from core.schemas import Decision, LeafSummary
from tests.alerting.helpers import T0

KINDS = ("crash", "error_ratio", "heartbeat_loss")
World = Callable[[int], list[Decision]]  # window index -> that window's decisions, every kind of every room


def judged(key: str, kind: str, window: int, bad: bool, region: str = "eu", score: float = 0.0) -> Decision:
    return Decision(scope="room", key=key, kind=kind, window_start=T0 + window * 10_000,
                    window_end=T0 + (window + 1) * 10_000, bad=bad, severity="warning" if bad else "info",
                    score=0.9 if bad else score, labels={"region": region})


def aggregate(window: int, bad: bool = False) -> Decision:
    return Decision(scope="region", key="eu", kind="crash", window_start=T0 + window * 10_000,
                    window_end=T0 + (window + 1) * 10_000, bad=bad, labels={"region": "eu"})


def as_json(events: list[Emitted]) -> list[bytes]:
    return [msgspec.json.encode({"alert": e.alert, "muted": e.muted}) for e in events]


def replay(world: World, windows: int, forwarders: Callable[[int], DecisionForwarder] | None) -> list[Emitted]:
    """Every window through one stage, its room decisions filtered by ``forwarders(window)`` when given."""
    stage = AlertStage(AlertingPolicy())
    events: list[Emitted] = []
    for window in range(windows):
        decisions = world(window)
        if forwarders is None:
            events += stage.step(decisions)
        else:
            kept, summary = forwarders(window).forward(decisions)
            events += stage.step(kept, [summary])
    return events


def one_forwarder(policy: AlertingPolicy | None = None) -> Callable[[int], DecisionForwarder]:
    forwarder = DecisionForwarder(policy or AlertingPolicy(), "room-health:0")
    return lambda window: forwarder


def test_a_room_that_fires_recovers_and_resolves_sees_the_same_events_filtered_or_not() -> None:
    bad_windows = {6, 7, 8, 12}  # fires at 7, stays open over one good window, resolves after three good ones

    def world(window: int) -> list[Decision]:
        rooms = [judged(f"room-{i}", kind, window, i == 3 and kind == "crash" and window in bad_windows)
                 for i in range(20) for kind in KINDS]
        return [*rooms, aggregate(window)]

    everything = replay(world, 24, None)
    assert [(e.alert.key, e.alert.status) for e in everything] == [("room-3", "firing"), ("room-3", "resolved")]
    forwarder = DecisionForwarder(AlertingPolicy(), "room-health:0")
    filtered = replay(world, 24, lambda window: forwarder)
    assert as_json(filtered) == as_json(everything)


def test_only_what_can_change_an_alert_is_forwarded() -> None:
    forwarder = DecisionForwarder(AlertingPolicy(), "room-health:0", warmup_windows=0)
    kept, summary = forwarder.forward([judged(f"room-{i}", kind, 0, False) for i in range(100) for kind in KINDS])
    assert kept == []
    assert (summary.judged, summary.forwarded) == (300, 0)
    assert summary.active == [("region", "eu", T0 + 10_000, 100)]
    # A bad crash verdict: the whole room window goes (residual subtraction needs its siblings).
    kept, _ = forwarder.forward([judged("room-1", kind, 1, kind == "crash") for kind in KINDS])
    assert [d.kind for d in kept] == list(KINDS)
    # Then the crash goods until resolve_windows newer windows were good; the other kinds no more.
    goods = [[d.kind for d in forwarder.forward([judged("room-1", k, w, False) for k in KINDS])[0]] for w in range(2, 10)]
    assert goods == [["crash"]] * 6 + [[], []]
    # A suspect good (score at the threshold) and the one after it.
    suspects = [len(forwarder.forward([judged("room-2", "crash", w, False, score=s)])[0])
                for w, s in ((7, 0.5), (8, 0.1), (9, 0.1))]
    assert suspects == [1, 1, 0]


def test_a_new_forwarder_forwards_everything_until_it_knows_what_its_keys_owe() -> None:
    def world(window: int) -> list[Decision]:
        return [judged(f"room-{i}", "crash", window, i == 0 and window in (3, 4, 5)) for i in range(10)]

    everything = replay(world, 14, None)
    assert [e.alert.status for e in everything] == ["firing", "resolved"]
    # The partition moves to another worker right after the room's last bad window: a forwarder with no memory.
    policy = AlertingPolicy()
    first, second = DecisionForwarder(policy, "room-health:0"), DecisionForwarder(policy, "room-health:0")
    moved = replay(world, 14, lambda window: first if window <= 5 else second)
    assert as_json(moved) == as_json(everything)
    # Without the warm-up the alert would never see its good windows and resolve only as stale, later.
    forgetful = DecisionForwarder(policy, "room-health:0", warmup_windows=0)
    lost = replay(world, 14, lambda window: first if window <= 5 else forgetful)
    assert [e.alert.status for e in lost] == ["firing"]


def test_an_incident_and_its_share_of_active_rooms_are_the_same_from_summaries() -> None:
    # 6 of 20 rooms in eu crash together (a region incident), then 2 rooms close (stop sending) and
    # go stale: the share the incident is judged on counts active rooms from the summaries.
    def world(window: int) -> list[Decision]:
        rooms = []
        for i in range(20):
            if i in (18, 19) and window >= 9:
                continue
            bad = i < 6 and 4 <= window < 9
            rooms += [judged(f"room-{i}", kind, window, bad and kind == "crash") for kind in KINDS]
        return [*rooms, aggregate(window)]

    everything = replay(world, 40, None)
    assert {(e.alert.scope, e.alert.status) for e in everything} >= {("cluster", "firing"), ("cluster", "resolved")}
    assert as_json(replay(world, 40, one_forwarder())) == as_json(everything)


def test_random_worlds_page_the_same_filtered_or_not() -> None:
    """Rooms that flap, go suspect, go dark (heartbeat_loss), close and reopen, in two regions."""
    for seed in range(12):
        rng = random.Random(seed)
        episodes = {(rng.randrange(30), rng.choice(KINDS)): (rng.randrange(40), rng.randrange(1, 6))
                    for _ in range(12)}
        closed = {rng.randrange(30): (rng.randrange(40), rng.randrange(3, 20)) for _ in range(4)}
        noise = {(rng.randrange(30), rng.randrange(60)) for _ in range(40)}  # single bad windows: pending only

        def world(window: int, seed: int = seed, episodes: dict = episodes, closed: dict = closed,
                  noise: set = noise) -> list[Decision]:
            decisions = []
            for room in range(30):
                start, length = closed.get(room, (-1, 0))
                if start <= window < start + length:
                    continue
                for kind in KINDS:
                    first, span = episodes.get((room, kind), (-1, 0))
                    bad = first <= window < first + span or (kind == "crash" and (room, window) in noise)
                    # The same world each replay: a score drawn from (seed, room, kind, window), not a shared rng.
                    score = random.Random(f"{seed}-{room}-{kind}-{window}").choice((0.0, 0.1, 0.45))
                    decisions.append(judged(f"room-{room}", kind, window, bad, "eu" if room % 3 else "us", score))
            return [*decisions, aggregate(window, bad=window in (20, 21))]

        everything = replay(world, 70, None)
        filtered = replay(world, 70, one_forwarder())
        assert as_json(filtered) == as_json(everything), f"seed {seed}"
        assert any(e.alert.status == "resolved" for e in everything), f"seed {seed} tests nothing"


def test_summaries_survive_the_engine_state() -> None:
    stage = AlertStage(AlertingPolicy())
    forwarder = DecisionForwarder(AlertingPolicy(), "room-health:0")
    kept, summary = forwarder.forward([judged(f"room-{i}", "crash", 0, False) for i in range(5)])
    stage.step(kept, [summary])
    restored = AlertStage(AlertingPolicy(), msgspec.json.decode(msgspec.json.encode(stage.to_state())))
    assert restored.to_state()["summaries"] == stage.to_state()["summaries"] == {
        "room-health:0": [["region", "eu", T0 + 10_000, 5]]}


def test_a_summary_alone_moves_event_time_and_judges_staleness() -> None:
    stage = AlertStage(AlertingPolicy())
    for window in range(3):  # room-1 fires
        stage.step([judged("room-1", "crash", window, True)])
    assert [t.key for t in stage.engine.open_alerts()] == ["room-1"]
    # room-1 says nothing more; its partition's summaries (everything else good, filtered) keep coming.
    events = []
    for window in range(3, 20):
        end = T0 + (window + 1) * 10_000
        events += stage.step([], [LeafSummary(source="room-health:0", watermark=(end - 10_000, end))])
    assert [(e.alert.key, e.alert.status) for e in events] == [("room-1", "resolved")]
    assert stage.clock.now_ms() == T0 + 20 * 10_000
