"""Error clients counted at most two per source: rooms, scopes, replays and the stored state."""

from __future__ import annotations

import msgspec

from core.schemas import CLIENTS_PER_SOURCE, ClientReport
from streams import replay
from streams.source_cap import SourceCapped, client_hash, source_hash
from streams.windows import ROOM_WINDOWS, WindowState

T = 1_795_323_600_000


def _error(i: int, room: str, client: str, source: str | None, code: str = "crash") -> ClientReport:
    return ClientReport(report_id=f"e{i}", ts=T + i % 5_000, client_id=client, room_id=room, kind="error",
                        error_code=code, platform="ios", region="eu", source=source)


def _healths(reports: list[ClientReport]) -> dict[tuple[str, str], object]:
    return {(h.scope, h.key): h for h in replay.windows(reports, window_s=10, lateness_s=10) if h.window_start == T}


def test_one_source_counts_two_clients_however_many_ids_it_invents() -> None:
    forged = [_error(i, "room-1", f"fake-{i}", "script-net") for i in range(900)]
    real = [_error(1000 + i, "room-1", f"real-{i}", f"net-{i}") for i in range(30)]
    health = _healths(forged + real)[("room", "room-1")]
    assert health.error_clients == 930  # what was reported, still published
    assert health.capped_error_clients == CLIENTS_PER_SOURCE + 30
    assert health.capped_error_clients_by_code == {"crash": 32.0}
    assert health.error_sources == 31


def test_unstamped_reports_count_each_client_as_its_own_source() -> None:
    reports = [_error(i, "room-1", f"c{i % 40}", None) for i in range(200)]
    health = _healths(reports)[("room", "room-1")]
    assert health.error_clients == health.capped_error_clients == 40


def test_a_script_spread_over_many_rooms_is_capped_again_in_the_scopes_it_lifts() -> None:
    # Two invented ids in each of 300 rooms: no room sees more than two from it, the region sees 600.
    spread = [_error(i, f"room-{i // 2}", f"fake-{i}", "script-net") for i in range(600)]
    background = [_error(1000 + i, f"room-{i}", f"real-{i}", f"net-{i}") for i in range(50)]
    healths = _healths(spread + background)
    for scope, key in (("region", "eu"), ("global", "all"), ("platform", "ios")):
        assert healths[(scope, key)].error_clients == 650
        assert healths[(scope, key)].capped_error_clients == 50 + CLIENTS_PER_SOURCE, (scope, key)


def test_a_huge_room_is_estimated_from_a_sample_of_its_sources() -> None:
    capped = SourceCapped(k=256)
    for i in range(20_000):
        capped.add(source_hash(f"net-{i}"), client_hash(f"client-{i}"), 1.0, "ios")
    for i in range(5_000):
        capped.add(source_hash("script"), client_hash(f"fake-{i}"), 1.0, "ios")
    assert not capped.exact
    assert abs(capped.totals()["ios"] / 20_002 - 1) < 3 / 254 ** 0.5
    assert abs(capped.sources() / 20_001 - 1) < 3 / 254 ** 0.5


def test_the_capped_sets_survive_the_changelog() -> None:
    reports = [_error(i, "room-1", f"fake-{i}", "script-net") for i in range(500)]
    reports += [_error(500 + i, "room-1", f"real-{i}", f"net-{i}") for i in range(40)]
    state = ROOM_WINDOWS.add_many(ROOM_WINDOWS.initialize(), reports)
    first = ROOM_WINDOWS.result(state, "room", "room-1", T, T + 10_000)
    assert first.capped_error_clients == CLIENTS_PER_SOURCE + 40
    encoder = msgspec.msgpack.Encoder(enc_hook=ROOM_WINDOWS.enc_hook)
    decoder = msgspec.msgpack.Decoder(WindowState, dec_hook=ROOM_WINDOWS.dec_hook)
    assert ROOM_WINDOWS.result(decoder.decode(encoder.encode(state)), "room", "room-1", T, T + 10_000) == first
