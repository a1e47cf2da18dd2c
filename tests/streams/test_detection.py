"""The detection pipeline offline: spikes page and resolve, negatives stay silent, state survives restarts."""

from __future__ import annotations

import heapq
from typing import Any

from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted
from core.schemas import Alert, ClientReport, RoomHealth
from detectors.ensemble import EnsembleConfig
from streams import replay
from streams.detection import WindowDetection, replay_alerts, state_key
from tests.streams.detection_scenarios import SPIKE_ROOM, T0, spike, world

WINDOW_MS = 2000


# The worlds' listeners heartbeat in every 2-s window: the expected audience must know that rhythm.
EVERY_WINDOW = EnsembleConfig(audience={"heartbeat_s": 2.0})


def run(reports: Any) -> list[Emitted]:
    return list(replay_alerts(reports, window_s=2, lateness_s=1, config=EVERY_WINDOW))


def paged(events: list[Emitted], status: str = "firing") -> list[Alert]:
    return [e.alert for e in events if e.muted is None and e.alert.status == status]


def test_a_spike_pages_once_and_resolves_after_recovery() -> None:
    events = run(world(16, WINDOW_MS, {SPIKE_ROOM: spike(range(6, 9))}, rooms=21))
    firing = paged(events)
    assert [(a.scope, a.key, a.kind) for a in firing] == [("room", SPIKE_ROOM, "details_not_available")]
    onset = T0 + 6 * WINDOW_MS
    assert firing[0].starts_at == onset and firing[0].event_ts - onset <= 3 * WINDOW_MS
    # The overall error ratio fires too, but does not page on top of the specific alert.
    generic = [e for e in events if e.alert.kind == "error_ratio" and e.alert.status == "firing"]
    assert generic and all("details_not_available" in (e.muted or "") for e in generic)
    resolved = paged(events, "resolved")
    assert {(a.key, a.kind) for a in resolved} == {(SPIKE_ROOM, "details_not_available"), (SPIKE_ROOM, "error_ratio")}
    assert all(a.event_ts > T0 + 9 * WINDOW_MS for a in resolved)
    assert not [e for e in events if e.alert.scope in ("cluster", "global")]


def test_a_benign_surge_of_listeners_stays_silent() -> None:
    surge = {"room-3": {w: {"listeners": 120, "errors": 3} for w in range(6, 12)}}
    # The surge's listeners go as listeners do, saying so: 80 of them vanishing without a word would be a
    # silent failure (heartbeat_loss), not the end of a surge.
    goodbyes = [ClientReport(report_id=f"room-3-bye-{c}", ts=T0 + 12 * WINDOW_MS, client_id=f"room-3-c{c}",
                             room_id="room-3", kind="leave", platform="ios", region="eu", app_version="5.1")
                for c in range(40, 120)]
    reports = sorted([*world(16, WINDOW_MS, surge, rooms=21), *goodbyes], key=lambda report: report.ts)
    assert run(reports) == []


def test_one_client_spamming_errors_stays_silent() -> None:
    spam = {"room-3": {w: {"error_reports_per_client": 60} for w in range(6, 12)}}
    assert run(world(16, WINDOW_MS, spam, rooms=21)) == []


def test_a_regional_outage_is_one_cluster_incident_and_its_rooms_do_not_page() -> None:
    regions = {f"room-{i}": ("eu" if i < 8 else "us") for i in range(40)}
    broken = {f"room-{i}": spike(range(6, 10), errors=12) for i in range(6)}
    events = run(world(18, WINDOW_MS, broken, rooms=40, region_of=regions))
    firing = paged(events)
    assert [(a.scope, a.key) for a in firing] == [("cluster", "eu")]
    assert firing[0].affected == [f"room-{i}" for i in range(6)]
    rooms = [e for e in events if e.alert.scope == "room" and e.alert.status == "firing"]
    assert {e.alert.key for e in rooms} == set(firing[0].affected)
    assert all((e.muted or "").startswith("inhibited by cluster incident eu") for e in rooms)
    assert not [e for e in events if e.alert.scope == "global"]
    assert [a.key for a in paged(events, "resolved") if a.scope == "cluster"] == ["eu"]


class DictStore(dict[bytes, bytes]):
    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


def room_windows(rooms: int = 4) -> list[RoomHealth]:
    reports = world(16, WINDOW_MS, {"room-1": spike(range(9, 11))}, rooms=rooms)
    return list(replay.windows(reports, window_s=2, lateness_s=1))


def test_detector_state_in_the_store_survives_a_restart_key_by_key() -> None:
    windows = room_windows()
    uninterrupted = WindowDetection()
    expected = [uninterrupted.observe(w).decisions for w in windows]
    store = DictStore()
    first = WindowDetection()
    half = len(windows) // 2
    got = [first.observe(w, store).decisions for w in windows[:half]]
    assert state_key("room", "room-1") in store and state_key("global", "all") in store
    restarted = WindowDetection()  # a new worker: nothing cached, everything from the store
    got += [restarted.observe(w, store).decisions for w in windows[half:]]
    assert got == expected
    assert any(d.bad for batch in got for d in batch)


def test_an_unreadable_key_state_costs_a_warm_up_not_the_worker() -> None:
    store = DictStore({state_key("room", "room-0"): b"\xc1 not msgpack"})
    detected = WindowDetection().observe(room_windows(1)[0], store)
    assert {d.kind for d in detected.decisions} >= {"error_ratio", "volume"}
    assert store[state_key("room", "room-0")] != b"\xc1 not msgpack"


def test_score_rows_carry_a_learned_band_once_warm() -> None:
    detection = WindowDetection()
    windows = [w for w in room_windows() if w.scope == "room" and w.key == "room-1"]
    rows = [row for w in windows for row in detection.observe(w).scores]
    assert {r.detector for r in rows} >= {"volume/volume_baseline", "error_ratio/error_ratio", "error_ratio/cusum",
                                          "details_not_available/error_ratio"}
    last = [r for r in rows if r.window_start == windows[-1].window_start and r.detector == "error_ratio/error_ratio"]
    assert last and last[0].lower <= last[0].baseline < last[0].upper
    spiked = [r for r in rows if r.window_start == T0 + 9 * WINDOW_MS and r.detector == "error_ratio/error_ratio"]
    assert spiked[0].observed > spiked[0].upper and spiked[0].score >= 0.5


def test_alert_state_restored_mid_incident_neither_forgets_nor_repeats() -> None:
    reports = world(16, WINDOW_MS, {SPIKE_ROOM: spike(range(6, 9))}, rooms=21)
    detection = WindowDetection()
    batches: dict[int, list[Any]] = {}
    for window in heapq.merge(replay.windows(reports, window_s=2, lateness_s=1), key=lambda w: w.window_end):
        batches.setdefault(window.window_end, []).extend(detection.observe(window, scores=False).decisions)
    ordered = [batches[end] for end in sorted(batches)]
    policy = AlertingPolicy()
    whole = AlertStage(policy)
    expected = [(e.alert, e.muted) for batch in ordered for e in whole.step(batch)]
    cut = 8  # the room is firing here
    stage = AlertStage(policy)
    got = [(e.alert, e.muted) for batch in ordered[:cut] for e in stage.step(batch)]
    assert any(a.status == "firing" for a, _ in got)
    restored = AlertStage(policy, stage.to_state())
    got += [(e.alert, e.muted) for batch in ordered[cut:] for e in restored.step(batch)]
    assert got == expected


def test_forged_errors_page_no_outage_and_do_not_mute_a_real_one_after_them() -> None:
    # The script keeps going while the room really fails: its open alert must not mute the real page.
    forged: dict[int, dict[str, int | str]] = {w: {"forged_ids": 300} for w in range(6, 18)}
    for w in range(14, 17):
        forged[w] = {**forged[w], "errors": 15}
    events = run(world(30, WINDOW_MS, {SPIKE_ROOM: forged}, rooms=21))
    firing = [e for e in events if e.alert.status == "firing"]
    first_real = min(e.alert.starts_at for e in firing if e.alert.kind != "suspected_forgery")
    assert first_real == T0 + 14 * WINDOW_MS, [(e.alert.kind, e.alert.starts_at) for e in firing]
    suspected = [e.alert for e in firing if e.alert.kind == "suspected_forgery"]
    assert suspected and all(a.severity == "warning" and a.scope == "room" for a in suspected)
    assert suspected[0].starts_at == T0 + 6 * WINDOW_MS and "not an outage" in suspected[0].summary
    assert not [e for e in events if e.alert.scope in ("cluster", "global", "region")]
    real = [a for a in paged(events) if a.kind == "details_not_available"]
    assert [(a.key, a.starts_at) for a in real] == [(SPIKE_ROOM, T0 + 14 * WINDOW_MS)]
    still_open = [e for e in events if e.alert.kind == "suspected_forgery" and e.alert.status == "resolved"]
    assert still_open and still_open[0].alert.event_ts > real[0].event_ts  # both were open together


def test_a_recording_cut_off_inside_a_window_does_not_page_its_missing_seconds() -> None:
    """The last window holds the few reports before the cut: it is not judged, so no audience looks gone."""
    normal = list(world(16, WINDOW_MS, rooms=21))
    cut = [r for r in world(17, WINDOW_MS, rooms=21) if r.ts >= T0 + 16 * WINDOW_MS and r.room_id in ("room-0", "room-1")]
    assert run([*normal, *cut]) == []
    # Judged, that last window would be a region, the world and 19 rooms gone dark.
    windows = list(replay.windows([*normal, *cut], window_s=2, lateness_s=1))
    assert any(w.window_start == T0 + 16 * WINDOW_MS for w in windows)
    assert not any(w.window_start == T0 + 16 * WINDOW_MS
                   for w in replay.windows([*normal, *cut], window_s=2, lateness_s=1, complete_only=True))


def test_a_replayed_broken_clock_is_refused_and_blinds_nothing() -> None:
    """A report dated 2099 first in the recording and one in the middle: the spike still pages, alone."""
    def broken(i: int, ts: int) -> ClientReport:
        return ClientReport(report_id=f"broken-{i}", ts=ts, client_id="broken", room_id="room-3", kind="heartbeat",
                            platform="ios", region="eu", app_version="5.1")
    reports = list(world(16, WINDOW_MS, {SPIKE_ROOM: spike(range(6, 9))}, rooms=21))
    year_2099 = 4_070_908_800_000
    reports = [broken(0, year_2099), *reports[: len(reports) // 3], broken(1, year_2099), broken(2, 978_307_200_000),
               *reports[len(reports) // 3:]]
    firing = paged(run(reports))
    assert [(a.scope, a.key, a.kind) for a in firing] == [("room", SPIKE_ROOM, "details_not_available")]
