"""Dark keys: windows that never closed are judged, in a replay, by the windows other keys close."""

from __future__ import annotations

import zlib
from typing import Any

from core.schemas import ClientReport, RoomHealth
from detectors.ensemble import EnsembleConfig
from streams.dark import DarkKeys
from streams.detection import replay_alerts
from tests.streams.detection_scenarios import SPIKE_ROOM, room_window, spike

WINDOW_MS = 10_000
T0 = 1_795_323_600_000
# room_window's listeners heartbeat in every window: the audience must know that rhythm.
EVERY_WINDOW = EnsembleConfig(audience={"heartbeat_s": 10.0})


def test_due_gives_each_missed_window_once_oldest_first() -> None:
    dark = DarkKeys(WINDOW_MS, give_up_ms=600_000)
    dark.seen(RoomHealth(key="a", window_start=0, window_end=10_000))
    dark.seen(RoomHealth(scope="global", key="all", window_start=0, window_end=10_000))
    assert dark.due(10_000) == []
    assert [(w.scope, w.key, w.window_end) for w, _ in dark.due(30_000)] == [
        ("global", "all", 20_000), ("room", "a", 20_000), ("global", "all", 30_000), ("room", "a", 30_000)]
    assert dark.due(30_000) == []
    # a real window again: the key is alive, nothing is due up to it
    dark.seen(RoomHealth(key="a", window_start=30_000, window_end=40_000))
    assert [(w.key, w.window_end) for w, _ in dark.due(40_000)] == [("all", 40_000)]


def test_a_key_is_given_up_and_every_key_forgotten_on_rebalance() -> None:
    dark = DarkKeys(WINDOW_MS, give_up_ms=20_000)
    dark.seen(RoomHealth(key="ended", window_start=0, window_end=10_000), partition=2)
    assert [(w.window_end, p) for w, p in dark.due(1_000_000)] == [(20_000, 2), (30_000, 2)]
    assert len(dark) == 0 and dark.due(2_000_000) == []
    dark.seen(RoomHealth(key="moved", window_start=0, window_end=10_000))
    dark.forget()
    assert dark.due(100_000) == []


def _world(windows: int, dark_from: int | None = None, *, ends_at: int | None = None,
           every_room_dark: range | None = None) -> list[ClientReport]:
    """20 rooms of 40 listeners for ``windows`` windows; the spike room goes dark (or ends) from a window on."""
    reports: list[ClientReport] = []
    for window in range(windows):
        if every_room_dark is not None and window in every_room_dark:
            continue
        for index in range(20):
            room = f"room-{index}"
            if room == SPIKE_ROOM and dark_from is not None and window >= dark_from:
                continue
            if room == SPIKE_ROOM and ends_at is not None and window >= ends_at:
                if window == ends_at:  # everyone says goodbye
                    reports += [ClientReport(report_id=f"{room}-{window}-{c}-bye", ts=T0 + window * WINDOW_MS + c,
                                             client_id=f"{room}-c{c}", room_id=room, kind="leave",
                                             platform="ios", region="eu", app_version="5.1") for c in range(40)]
                continue
            reports += list(room_window(room, window, WINDOW_MS, errors=0 if window % 3 else 1))
    return reports


def _fired(reports: list[ClientReport]) -> list[tuple[str, str, str, int]]:
    return [(e.alert.scope, e.alert.key, e.alert.kind, (e.alert.event_ts - T0) // WINDOW_MS)
            for e in replay_alerts(reports, window_s=10, lateness_s=10, config=EVERY_WINDOW)
            if e.alert.status == "firing"]


def test_a_room_whose_clients_all_vanish_pages_heartbeat_loss() -> None:
    fired = _fired(_world(40, dark_from=25))
    assert ("room", SPIKE_ROOM, "heartbeat_loss") in [f[:3] for f in fired], fired
    at = min(f[3] for f in fired if f[:3] == ("room", SPIKE_ROOM, "heartbeat_loss"))
    assert at <= 25 + 4, fired  # within 40 s of event time
    assert all(f[1] == SPIKE_ROOM for f in fired if f[0] == "room"), fired


def test_a_room_that_ends_with_its_leaves_stays_quiet() -> None:
    assert _fired(_world(60, ends_at=25)) == []


def test_the_whole_stream_going_dark_pages_the_global_window() -> None:
    fired = _fired(_world(50, every_room_dark=range(25, 37)))
    assert ("global", "all", "heartbeat_loss") in [f[:3] for f in fired] or \
        ("global", "all", "correlated") in [f[:3] for f in fired], fired


def test_an_alert_whose_key_goes_dark_stays_firing() -> None:
    world = _world(45, dark_from=14)
    # the spike room crashes loudly (windows 10-13), then its clients vanish for good
    spiking = {window: overrides for window, overrides in spike(range(10, 14)).items()}
    world = [r for r in world if not (r.room_id == SPIKE_ROOM and 10 <= (r.ts - T0) // WINDOW_MS < 14)]
    for window, overrides in spiking.items():
        world += list(room_window(SPIKE_ROOM, window, WINDOW_MS, **overrides))  # type: ignore[arg-type]
    world.sort(key=lambda r: r.ts)
    events = [e.alert for e in replay_alerts(world, window_s=10, lateness_s=10, config=EVERY_WINDOW)
              if e.alert.key == SPIKE_ROOM and e.alert.kind == "details_not_available"]
    assert [a.status for a in events] == ["firing"], events


def test_missed_gives_the_gap_before_a_key_returns_and_due_keeps_to_its_partition() -> None:
    dark = DarkKeys(WINDOW_MS, give_up_ms=600_000)
    dark.seen(RoomHealth(key="a", window_start=0, window_end=10_000), partition=1)
    dark.seen(RoomHealth(key="b", window_start=0, window_end=10_000), partition=2)
    assert [(w.key, w.window_end, p) for w, p in dark.due(30_000, partition=2)] == [
        ("b", 20_000, 2), ("b", 30_000, 2)]
    assert [w.window_end for w in dark.missed(RoomHealth(key="a", window_start=30_000, window_end=40_000))] == [
        20_000, 30_000]
    dark.seen(RoomHealth(key="a", window_start=30_000, window_end=40_000), partition=1)
    assert dark.missed(RoomHealth(key="a", window_start=40_000, window_end=50_000)) == []  # no gap
    assert [(w.key, w.window_end, p) for w, p in dark.due(50_000, partition=1)] == [("a", 50_000, 1)]


def _judged(marks_every: int | None) -> dict[tuple[str, str], list[tuple[str, int, bool]]]:
    """Every key's decisions when event-time marks reach detection every ``marks_every`` window ends (None: at the end).

    The spike room goes dark for a while and comes back, then goes dark for good.
    """
    from streams import replay
    from streams.detection import WindowDetection

    world = [r for r in _world(50) if not (r.room_id == SPIKE_ROOM
                                            and (20 <= (r.ts - T0) // WINDOW_MS < 27 or (r.ts - T0) // WINDOW_MS >= 40))]
    detection = WindowDetection(EVERY_WINDOW, window_s=10)
    judged: dict[tuple[str, str], list[tuple[str, int, bool]]] = {}

    def note(decisions: list[Any]) -> None:
        for d in decisions:
            judged.setdefault((d.scope, d.key), []).append((d.kind, d.window_end, d.bad))

    ends = 0
    last_end = 0
    for window in replay.windows(world, 10, 10):
        if window.window_end != last_end and last_end:
            ends += 1
            if marks_every is not None and ends % marks_every == 0:
                for partition in (0, 1):
                    note(detection.judge_dark(last_end, partition=partition, scores=False).decisions)
        last_end = window.window_end
        note(detection.observe(window, scores=False, partition=zlib.crc32(window.key.encode()) % 2).decisions)
    for partition in (0, 1):
        note(detection.judge_dark(last_end + 20 * WINDOW_MS, partition=partition, scores=False).decisions)
    return judged


def test_dark_windows_are_the_same_however_late_the_marks_come() -> None:
    """A worker that reads marks late (catching up, a loaded cluster) judges what a prompt one does."""
    prompt = _judged(marks_every=1)
    assert any(kind == "heartbeat_loss" and bad for kind, _, bad in prompt[("room", SPIKE_ROOM)]), prompt
    gap = [end for _, end, _ in prompt[("room", SPIKE_ROOM)] if 20 * WINDOW_MS < end - T0 <= 27 * WINDOW_MS]
    assert gap, "the spike room's gap was not judged"
    for every in (3, 7, None):
        assert _judged(marks_every=every) == prompt, every
