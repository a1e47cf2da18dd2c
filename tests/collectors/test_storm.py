"""Fair admission in a storm, on an injected clock: which rooms are sampled, how, and that counts stay right."""

from __future__ import annotations

import pytest

from collectors.roomload import RoomLoad
from collectors.storm import SAMPLED_FOR_MS, StormPolicy, StormSampler, storm_seed
from core.config import ConfigError, load_settings
from core.schemas import ClientReport
from core.timeutil import ManualClock

TS = 1_795_323_600_000


def _report(room: str, client: str, kind: str = "error", number: int = 0) -> ClientReport:
    extra = {"error_code": "crash"} if kind == "error" else {}
    return ClientReport(report_id=f"{room}-{client}-{kind}-{number}", ts=TS, client_id=client, room_id=room,
                        kind=kind, platform="ios", **extra)


def _flood(step: int, per_step: int, room: str = "flood") -> list[ClientReport]:
    return [_report(room, f"f{step}-{i}") for i in range(per_step)]


def _quiet(step: int) -> list[ClientReport]:
    return [_report("quiet", f"q{step}"), _report("quiet", f"q{step}", "heartbeat", step)]


def _run(sampler: StormSampler, clock: ManualClock, steps: int, load: float, load_other: float = 0.0,
         per_step: int = 100) -> tuple[list[ClientReport], list[ClientReport], int]:
    """``steps`` requests 10 ms apart (a flood of ``per_step`` clients, and a quiet room): what each room kept."""
    flood: list[ClientReport] = []
    quiet: list[ClientReport] = []
    dropped = 0
    for step in range(steps):
        admitted = sampler.admit(_flood(step, per_step) + _quiet(step), load, load_other)
        flood += [r for r in admitted.kept if r.room_id == "flood"]
        quiet += [r for r in admitted.kept if r.room_id == "quiet"]
        dropped += admitted.errors_out
        clock.advance(10)
    return flood, quiet, dropped


def test_the_load_table_knows_each_rooms_share_and_rate_and_forgets_with_its_half_life() -> None:
    clock = ManualClock(0)
    load = RoomLoad(half_life_ms=1000, share=0.5, max_rooms=16, clock=clock)
    for _ in range(1000):  # 10 s (ten half-lives) at 1,000 reports/s from "a" and 300/s from "b"
        flooding = load.add(_flood(0, 10, "a") + _flood(0, 2, "b") + _flood(1, 1, "b")[:1])
        clock.advance(10)
    assert set(flooding) == {"a"} and flooding["a"][0] == 10
    assert load.rate_per_second("a") == pytest.approx(1000, rel=0.02)
    assert load.share("a") == pytest.approx(10 / 13, rel=0.01)
    clock.advance(2000)  # two half-lives of silence
    assert load.rate_per_second("a") == pytest.approx(250, rel=0.02)
    assert load.share("a") == pytest.approx(10 / 13, rel=0.01)  # everyone decays alike


def test_the_load_table_is_bounded_and_keeps_the_rooms_that_send_the_most() -> None:
    clock = ManualClock(0)
    load = RoomLoad(half_life_ms=1000, share=0.2, max_rooms=8, clock=clock)
    for step in range(2000):
        load.add(_flood(step, 20, "big") + [_report(f"tiny-{step}", "c")])
        clock.advance(1)
        assert len(load) <= 16
    assert load.share("big") == pytest.approx(20 / 21, rel=0.01)


def test_the_epoch_moves_without_changing_any_share() -> None:
    clock = ManualClock(0)
    load = RoomLoad(half_life_ms=10, share=0.5, max_rooms=8, clock=clock)
    for _ in range(100):  # 1,000 half-lives: the growth factor passes its bound many times
        load.add(_flood(0, 3, "a") + _flood(0, 1, "b"))
        clock.advance(10)
    assert load.share("a") == pytest.approx(0.75)
    assert load.rate_per_second("a") > 0


def test_a_flooding_room_is_sampled_by_client_and_the_quiet_room_loses_nothing() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(min_kept_per_second=100), seed=storm_seed(b"test"), clock=clock)
    flood, quiet, dropped = _run(sampler, clock, steps=300, load=1.0)
    assert len(quiet) == 600 and all(r.weight == 1.0 for r in quiet)  # every report, unweighted
    offered = 300 * 100
    assert dropped + len(flood) == offered
    assert len(flood) < offered / 20  # sampled hard: 1 in 64 once the room's rate is known
    # The weights stand for what was dropped: the room's count is right within the sample's noise.
    assert sum(r.weight for r in flood) == pytest.approx(offered, rel=0.1)
    assert sampler.keep_ratio("flood") == 1 / 64 and sampler.keep_ratio("quiet") == 1.0


def test_the_weighted_count_of_a_large_flood_is_within_two_percent() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(), seed=storm_seed(b"test"), clock=clock)
    flood, _, dropped = _run(sampler, clock, steps=2000, load=1.0, per_step=500)  # 50k reports/s for 20 s
    offered = 2000 * 500
    assert dropped > offered * 0.9
    assert sum(r.weight for r in flood) == pytest.approx(offered, rel=0.02)


def test_a_client_is_kept_or_dropped_whole_and_the_levels_nest() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(min_kept_per_second=0), seed=storm_seed(b"test"), clock=clock)
    clients = [f"c{i}" for i in range(4000)]
    for _ in range(100):  # the room is known to flood
        sampler.admit([_report("flood", client) for client in clients[:100]], 1.0, 0.0)
        clock.advance(10)

    def kept_at(load: float, number: int) -> set[str]:
        reports = [_report("flood", client, number=number) for client in clients]
        return {r.client_id for r in sampler.admit(reports, load, 0.0).kept}

    quarter = kept_at(0.4, 1)  # a load of 0.4: 1 in 4 (policy start 0.25, six levels to 1 in 64)
    assert kept_at(0.4, 2) == quarter  # the same clients again: their retries and next reports agree
    eighth = kept_at(0.55, 3)
    assert eighth < quarter and 0.08 < len(eighth) / len(clients) < 0.17
    assert 0.2 < len(quarter) / len(clients) < 0.3


def test_nothing_is_sampled_while_the_collector_keeps_up_or_the_room_is_small() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(), seed=1, clock=clock)
    flood, quiet, dropped = _run(sampler, clock, steps=200, load=0.2)  # below start_load
    assert dropped == 0 and len(flood) == 200 * 100 and len(quiet) == 400
    small = StormSampler(StormPolicy(min_kept_per_second=20_000), seed=1, clock=clock)
    _, _, dropped = _run(small, clock, steps=200, load=1.0)  # 10,000/s: under what a room always keeps
    assert dropped == 0


def test_heartbeats_of_the_other_rooms_follow_their_own_load_not_the_floods() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(), seed=1, clock=clock)
    beats = 0
    for step in range(200):
        flood = [_report("flood", f"f{step}-{i}", "heartbeat", step) for i in range(100)]
        others = [_report(f"room-{i}", f"o{step}-{i}", "heartbeat", step) for i in range(10)]
        admitted = sampler.admit(flood + others, load=1.0, load_other=0.1)
        beats += sum(r.room_id != "flood" for r in admitted.kept)
        clock.advance(10)
    assert beats == 2000 and admitted.heartbeat_keep == 1.0
    assert admitted.heartbeats_out > 0 and admitted.flooding_share == pytest.approx(100 / 110)


def test_sampled_rooms_are_listed_while_they_flood_then_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(min_kept_per_second=100), seed=1, clock=clock)
    with caplog.at_level("WARNING", logger="collectors.storm"):
        _run(sampler, clock, steps=100, load=1.0)
        assert [room for room, _ in sampler.current()] == ["flood"]
        assert sampler.current()[0][1].share > 0.9
        clock.advance(SAMPLED_FOR_MS + 1000)
        assert sampler.current() == []
        for step in range(3):  # only the quiet room now; the sweep forgets the flood
            sampler.admit(_quiet(step), 1.0, 0.0)
            clock.advance(600)
    assert "flood" not in sampler.sampled
    messages = [record.getMessage() for record in caplog.records]
    assert any("'flood' is flooding the collector" in m and "1 in" in m for m in messages)
    assert any("'flood' no longer floods" in m for m in messages)


def test_storm_sampling_can_be_turned_off() -> None:
    clock = ManualClock(0)
    sampler = StormSampler(StormPolicy(enabled=False), seed=1, clock=clock)
    _, _, dropped = _run(sampler, clock, steps=200, load=1.0)
    assert dropped == 0


def test_settings_that_cannot_work_are_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigError, match="STORM_ROOM_SHARE"):
        StormPolicy(room_share=0.0)
    with pytest.raises(ConfigError, match="STORM_MIN_KEEP"):
        StormPolicy(min_keep=2.0)
    settings = load_settings(env={"OUTAGEWATCH_COLLECTOR_STORM_MAX_INFLIGHT_REQUESTS": "10"})
    with pytest.raises(ConfigError, match="must be at least OUTAGEWATCH_COLLECTOR_MAX_INFLIGHT_REQUESTS"):
        StormPolicy.from_settings(settings.collector)
    assert StormPolicy.from_settings(load_settings(env={}).collector) == StormPolicy()
