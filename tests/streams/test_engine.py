"""The engine and replay, pure: exact counts, lateness, watermark closing, crash-replay idempotence."""

from __future__ import annotations

from core.schemas import ClientReport
from core.timeutil import ManualClock
from streams import replay
from streams import windows as room_windows
from streams.engine import HOLD_BACK, DictStore, PartitionWindows, WindowPolicy
from tests.streams.conftest import generate_reports

T = 1_795_323_600_000


def report(i: int, ts: int, room: str = "a", kind: str = "heartbeat", client: str = "c", **kw: object) -> ClientReport:
    return ClientReport(report_id=f"r{i}", ts=ts, client_id=client, room_id=room, kind=kind,  # type: ignore[arg-type]
                        platform="ios", **kw)  # type: ignore[arg-type]


def test_one_spamming_client_counts_once_per_code() -> None:
    spam = [report(i, T + i, kind="error", client="spammer", error_code="crash") for i in range(50)]
    other = [report(100, T + 1, kind="error", client="x", error_code="details_not_available"),
             report(101, T + 2, kind="heartbeat", client="y", weight=3.0)]
    (room, *_) = replay.windows(spam + other, window_s=10, lateness_s=0)
    assert (room.errors, room.error_clients) == (51.0, 2.0)
    assert room.error_clients_by_code == {"crash": 1.0, "details_not_available": 1.0}
    assert room.listeners == 3.0 and room.error_ratio == 51.0 / 3.0


def test_error_ratio_without_listeners_uses_error_clients() -> None:
    (room, *_) = replay.windows([report(0, T, kind="error", error_code="crash"),
                                 report(1, T + 1, kind="error", error_code="crash")], 10, 0)
    assert room.listeners == 0.0 and room.error_ratio == 2.0


def test_watermark_closes_after_lateness_and_late_reports_are_counted() -> None:
    reports = [report(0, T), report(1, T + 15_000),
               report(2, T + 5_000, client="d"),   # window 0 still open (lateness 10 s): counted
               report(3, T + 21_000),               # watermark T+21s: window 0 closes
               report(4, T + 1_000, client="e")]    # late: into the window at the watermark
    out = [h for h in replay.windows(reports, 10, 10) if h.scope == "room"]
    assert [(h.window_start - T, h.listeners, h.late_reports) for h in out] == [
        (0, 2.0, 0), (10_000, 1.0, 0), (20_000, 1.0, 1)]


def test_replay_matches_direct_counts_in_every_scope() -> None:
    reports = generate_reports(rooms=5, per_room=200, start_ms=T, span_ms=30_000)
    out = list(replay.windows(reports, 2, 1))
    total = sum(r.weight for r in reports)
    for scope in ("room", "global", "platform", "region", "app_version"):
        assert sum(h.reports for h in out if h.scope == scope) == total, scope
    assert len({(h.scope, h.key, h.window_start) for h in out}) == len(out)


def _run(store: DictStore, messages: list[tuple[int, list[ClientReport]]], flush_every: int,
         final: bool = False) -> list[object]:
    """Feed messages, publishing and flushing every few; returns what was published."""
    engine = PartitionWindows(room_windows, 0, WindowPolicy(2000, 1000, 10_000), store, ManualClock(0))
    published: list[object] = []
    for count, (offset, items) in enumerate(messages, 1):
        engine.add_message(items, offset)
        if count % flush_every == 0:
            for closed in engine.take_pending():
                published.extend(closed.results)
                engine.mark_closed(closed)
            engine.flush()
    if final:
        engine.close_due(final=True)
        for closed in engine.take_pending():
            published.extend(closed.results)
    return published


def test_crash_at_any_point_replays_without_loss_or_double_count() -> None:
    reports = generate_reports(rooms=3, per_room=100, start_ms=T, span_ms=20_000)
    messages = [(offset, reports[offset * 5:offset * 5 + 5]) for offset in range(len(reports) // 5)]
    clean = {(h.key, h.window_start): h for h in _run(DictStore(), messages, 3, final=True)}  # type: ignore[attr-defined]
    assert sum(h.reports for h in clean.values()) == sum(r.weight for r in reports)
    for crash_after in (4, 17, 31):
        store = DictStore()
        published = _run(store, messages[:crash_after], 3)
        # Restart: replay from an older committed offset; state comes back from the store.
        published += _run(store, messages[max(0, crash_after - 7):], 3, final=True)
        # Re-published windows are identical, so keeping the last of each is the clean run.
        final = {(h.key, h.window_start): h for h in published}  # type: ignore[attr-defined]
        assert final == clean


def test_idle_clock_restarts_while_the_partition_is_not_fetched() -> None:
    clock = ManualClock(0)
    engine = PartitionWindows(room_windows, 0, WindowPolicy(2000, 1000, idle_ms=5000), DictStore(), clock)
    engine.add_message([report(0, T)], 0)
    clock.advance(4000)
    engine.restart_idle_clock()  # e.g. a restart: recovery took 4 s, nothing fetched meanwhile
    clock.advance(4000)
    engine.advance_idle()
    assert engine.pending == []  # idle 4 s since fetching resumed, not 8
    clock.advance(1000)
    engine.advance_idle()
    assert [h.key for closed in engine.pending for h in closed.results] == ["a"]


def test_a_partition_without_input_holds_scope_windows_back_until_it_has_been_idle() -> None:
    # Three workers start at different moments: a partition whose worker has not fetched yet must not let
    # the merger close scope windows without its partials (they would be published short, then corrected).
    clock = ManualClock(0)
    engine = PartitionWindows(room_windows, 0, WindowPolicy(2000, 1000, idle_ms=5000), DictStore(), clock)
    assert engine.progress_mark() == HOLD_BACK
    clock.advance(5000)
    assert engine.progress_mark() is None  # idle for the idle time: nothing is coming
    engine.add_message([report(0, T)], 0)
    assert engine.progress_mark() == engine.meta.closed_upto
