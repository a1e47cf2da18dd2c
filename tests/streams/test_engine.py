"""The engine and replay, pure: exact counts, lateness, watermark closing, crash-replay idempotence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from core.schemas import ClientReport, MetricSample
from core.timeutil import ManualClock
from streams import replay
from streams.app import STATE_FORMAT
from streams.engine import HOLD_BACK, DictStore, PartitionWindows, Reducer, WindowPolicy, state_format
from streams.metrics import SERVICE_METRICS
from streams.scopes import Progress, ScopeMerger
from streams.windows import ROOM_WINDOWS, RoomWindows
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
    engine = PartitionWindows(ROOM_WINDOWS, 0, WindowPolicy(2000, 1000, 10_000), store, ManualClock(0))
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
    engine = PartitionWindows(ROOM_WINDOWS, 0, WindowPolicy(2000, 1000, idle_ms=5000), DictStore(), clock)
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
    engine = PartitionWindows(ROOM_WINDOWS, 0, WindowPolicy(2000, 1000, idle_ms=5000), DictStore(), clock)
    assert engine.progress_mark() == HOLD_BACK
    clock.advance(5000)
    assert engine.progress_mark() is None  # idle for the idle time: nothing is coming
    engine.add_message([report(0, T)], 0)
    assert engine.progress_mark() == T - 2000  # the windows the watermark passed by the lateness: none had input


def test_a_partition_gone_quiet_moves_its_mark_on_with_the_wall_clock() -> None:
    # Its rooms all stopped reporting: its windows without reports are final too, or no scope window (and no
    # event-time mark) would pass its last report, and detection could not judge the silence.
    clock = ManualClock(0)
    engine = PartitionWindows(ROOM_WINDOWS, 0, WindowPolicy(2000, 1000, idle_ms=5000), DictStore(), clock)
    engine.add_message([report(0, T + 100)], 0)
    clock.advance(5000)
    engine.advance_idle()
    closed = engine.take_pending()
    assert [h.window_end for c in closed for h in c.results] == [T + 2000]
    for c in closed:
        engine.mark_closed(c)
    clock.advance(10_000)
    engine.advance_idle()
    assert engine.progress_mark() == T + 14_000  # watermark T + 100 + 15 s, less 1 s of lateness, on a window


# -- stored formats ------------------------------------------------------------------------------------

STORED_V4 = Path(__file__).parent / "data" / "stored_v4.json"


def _stored_reports() -> list[ClientReport]:
    out = generate_reports(rooms=2, per_room=15, start_ms=T, span_ms=30_000, seed=7)
    return [msgspec.structs.replace(r, source=f"net-{i % 3}") if r.kind == "error" and i % 2 else r
            for i, r in enumerate(out)]


def _stored_samples() -> list[MetricSample]:
    return [MetricSample(ts=T + i * 750, service=f"svc-{i % 2}", name=("cpu", "mem")[i % 3 % 2], value=float(i % 17),
                         host=f"h{i % 5}", cluster=("eu", "us")[i % 4 % 2]) for i in range(40)]


def _stored(reducer: Reducer[Any, Any, Any], items: Sequence[Any]) -> dict[str, Any]:
    """What the engine stores and sends for ``items`` (3 per message), as the fixture records it."""
    store = DictStore()
    engine = PartitionWindows(reducer, 0, WindowPolicy(10_000, 5_000, 5_000), store, ManualClock(0))
    merger = ScopeMerger(reducer, sources=1, window_ms=10_000)
    encoder = msgspec.msgpack.Encoder()
    snapshots, progress = [], []

    def publish() -> None:
        for closed in engine.take_pending():
            sent = Progress(partition=0, closed_upto=closed.closed_upto, windows=closed.partials)
            progress.append(hashlib.sha256(encoder.encode(sent)).hexdigest())
            merger.apply(sent)
            engine.mark_closed(closed)
        engine.flush()

    for offset, start in enumerate(range(0, len(items), 3)):
        engine.add_message(items[start:start + 3], offset)
        publish()
        if offset == 5:
            snapshots.append({key.hex(): value.hex() for key, value in sorted(store.data.items())})
    engine.close_due(final=True)
    publish()
    snapshots.append({key.hex(): value.hex() for key, value in sorted(store.data.items())})
    return {"snapshots": snapshots, "progress_sha256": progress,
            "merger_sha256": hashlib.sha256(encoder.encode(merger.state)).hexdigest()}


def test_state_format_is_the_newest_of_the_parts_versions() -> None:
    assert STATE_FORMAT == state_format(ROOM_WINDOWS, SERVICE_METRICS) == 4

    class Bumped(RoomWindows):
        format_version = STATE_FORMAT + 1

    assert state_format(Bumped(), SERVICE_METRICS) == 5, "a bump of one reducer renames the state topics"


def test_stored_bytes_are_those_of_the_module_reducers_at_format_4() -> None:
    """The fixture was written by the module-based reducers (main before the reducer classes): the classes store,
    send and merge the same bytes, and read back every value the old code stored."""
    fixture = json.loads(STORED_V4.read_text())
    for name, reducer, items in (("room", ROOM_WINDOWS, _stored_reports()), ("service", SERVICE_METRICS,
                                                                              _stored_samples())):
        assert _stored(reducer, items) == fixture[name], name
        encode = msgspec.msgpack.Encoder(enc_hook=reducer.enc_hook).encode
        decode = msgspec.msgpack.Decoder(reducer.state_type, dec_hook=reducer.dec_hook).decode
        for snapshot in fixture[name]["snapshots"]:
            for key, value in snapshot.items():
                if not bytes.fromhex(key).endswith(b"|meta"):
                    stored = bytes.fromhex(value)
                    assert encode(decode(stored)) == stored, (name, bytes.fromhex(key))


@pytest.mark.parametrize("reducer, items", [(ROOM_WINDOWS, _stored_reports()[:20]),
                                            (SERVICE_METRICS, _stored_samples()[:20])], ids=["room", "service"])
def test_every_reducer_folds_alike_one_by_one_and_at_once_and_its_state_round_trips(
        reducer: Reducer[Any, Any, Any], items: list[Any]) -> None:
    one_by_one = reducer.initialize()
    for item in items:
        one_by_one = reducer.add(one_by_one, item)
    at_once = reducer.add_many(reducer.initialize(), items)
    encoder = msgspec.msgpack.Encoder(enc_hook=reducer.enc_hook)
    decoder = msgspec.msgpack.Decoder(reducer.state_type, dec_hook=reducer.dec_hook)
    assert encoder.encode(one_by_one) == encoder.encode(at_once)
    key, ts = reducer.key_and_ts(items[0])
    assert isinstance(key, str) and isinstance(ts, int)
    restored = decoder.decode(encoder.encode(at_once))
    both = reducer.result_and_partials(restored, reducer.scope, key, T, T + 10_000)
    assert both == (reducer.result(at_once, reducer.scope, key, T, T + 10_000), reducer.partials(at_once))
    marker = reducer.closed_marker(7)
    assert (marker.closed, marker.applied_offset) == (True, 7)


def test_a_reducer_without_the_whole_interface_cannot_be_made() -> None:
    class Partial(Reducer[ClientReport, Any, Any]):
        def initialize(self) -> Any:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]
