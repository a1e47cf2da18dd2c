"""Bounded distinct counts: exact for small rooms, small and accurate for a launch-night room."""

from __future__ import annotations

import msgspec

from core.schemas import ClientReport
from core.timeutil import ManualClock
from streams.distinct import ERROR_CLIENTS_K, LISTENERS_K, Distinct, client_hash
from streams.engine import DictStore, PartitionWindows, WindowPolicy
from streams.windows import ROOM_WINDOWS, WindowState

T = 1_795_323_600_000


def _report(i: int, client: str, kind: str = "heartbeat", platform: str = "ios", **kw: object) -> ClientReport:
    return ClientReport(report_id=f"r{i}", ts=T + i % 10_000, client_id=client, room_id="launch",
                        kind=kind, platform=platform, **kw)  # type: ignore[arg-type]


def _bound(k: int) -> float:
    """Three relative standard errors of the bottom-k estimate with equal weights (see streams.distinct)."""
    return 3 / (k - 2) ** 0.5


def test_700k_listener_window_stays_small_and_within_the_documented_error() -> None:
    encoder = msgspec.msgpack.Encoder(enc_hook=ROOM_WINDOWS.enc_hook)
    state = ROOM_WINDOWS.initialize()
    listeners, crashing = 700_000, 60_000
    batch: list[ClientReport] = []
    for i in range(listeners):
        # Two heartbeats per client (the second with weight 2 for a tenth of them): max weight counts.
        platform = "android" if i % 4 == 0 else "ios"
        batch.append(_report(i, f"client-{i}", platform=platform))
        batch.append(_report(i, f"client-{i}", platform=platform, weight=2.0 if i % 10 == 0 else 1.0))
        if i < crashing:
            batch.append(_report(i, f"client-{i}", kind="error", error_code="crash", platform=platform))
        if len(batch) >= 10_000:
            ROOM_WINDOWS.add_many(state, batch)
            batch = []
    ROOM_WINDOWS.add_many(state, batch)
    stored = encoder.encode(state)
    assert len(stored) < 64 * 1024, len(stored)
    health = ROOM_WINDOWS.result(state, "room", "launch", T, T + 10_000)
    true_listeners = listeners + listeners // 10  # a tenth weigh 2
    assert abs(health.listeners / true_listeners - 1) < _bound(LISTENERS_K), health.listeners
    assert abs(health.error_clients / crashing - 1) < _bound(ERROR_CLIENTS_K), health.error_clients
    assert health.reports == 2 * listeners + listeners // 10 + crashing  # plain sums stay exact
    # Per-cell estimates feed the platform windows: a quarter of the clients are on android, so the
    # sample there is a quarter as large (the bound of k / 4).
    parts = ROOM_WINDOWS.partials(state)
    android = parts[("platform", "android")].listeners
    true_android = listeners // 4 + listeners // 20
    assert abs(android / true_android - 1) < _bound(LISTENERS_K // 4), android
    # What the changelog holds comes back with the same result, bit for bit.
    decoder = msgspec.msgpack.Decoder(WindowState, dec_hook=ROOM_WINDOWS.dec_hook)
    assert ROOM_WINDOWS.result(decoder.decode(stored), "room", "launch", T, T + 10_000) == health


def test_small_sets_are_exact_and_replay_idempotent() -> None:
    seen = Distinct(k=LISTENERS_K)
    for i in range(LISTENERS_K):
        seen.add(client_hash(f"c{i}"), 1.0 + (i % 3), "web")
    expected = sum(1.0 + (i % 3) for i in range(LISTENERS_K))
    assert seen.exact and seen.total() == expected
    for i in range(LISTENERS_K):  # the same reports again: nothing changes
        seen.add(client_hash(f"c{i}"), 1.0, "web")
    assert seen.total() == expected
    seen.add(client_hash("one-more"), 1.0, "web")  # k + 1 clients: now an estimate
    assert not seen.exact and abs(seen.total() / (expected + 1) - 1) < 0.1


def test_estimate_does_not_depend_on_arrival_order_or_trim_time() -> None:
    clients = [f"c{i}" for i in range(20_000)]
    forward, backward = Distinct(k=512), Distinct(k=512)
    for index, client in enumerate(clients):
        forward.add(client_hash(client), 1.0 + index % 2, "a" if index % 3 else "b")
    for index in reversed(range(len(clients))):
        backward.add(client_hash(clients[index]), 1.0 + index % 2, "a" if index % 3 else "b")
        if index % 777 == 0:
            backward = Distinct.decode(backward.encode())  # a flush and a restart in between
    assert forward.totals() == backward.totals()


def test_engine_stores_a_big_room_window_small() -> None:
    store = DictStore()
    engine = PartitionWindows(ROOM_WINDOWS, 0, WindowPolicy(10_000, 10_000), store, ManualClock(0))
    for offset in range(50):
        engine.add_message([_report(i, f"c{offset}-{i}") for i in range(2000)], offset)
        engine.flush()
    assert max(len(value) for value in store.data.values()) < 64 * 1024
