"""Room windows of a flood the collector sampled by client: weighted counts and distinct clients stay right."""

from __future__ import annotations

import pytest
from xxhash import xxh3_64_intdigest

from core.schemas import ClientReport, RoomHealth
from streams import replay
from streams.distinct import ERROR_CLIENTS_K

T = 1_795_323_600_000
# Three relative standard errors of the error-client sketch (k = 1,024), plus the sample's own noise.
SKETCH_3SE = 3 / (ERROR_CLIENTS_K - 2) ** 0.5


def _error(i: int, client: str, weight: float = 1.0, source: str | None = None) -> ClientReport:
    return ClientReport(report_id=f"e{i}", ts=T + i % 9_000, client_id=client, room_id="flood", kind="error",
                        error_code="crash", platform="ios", region="eu", weight=weight, source=source)


def _kept(client: str, keep: float) -> bool:
    """The collector's rule (collectors.storm): a keyed hash of room and client under the keep ratio."""
    return xxh3_64_intdigest(f"flood\x1f{client}".encode(), 12345) < int(keep * 2**64)


def _sampled(clients: int, reports_each: int, keep: float, start: int = 0, source: bool = False) -> list[ClientReport]:
    out = []
    for c in range(clients):
        client = f"client-{c}"
        if _kept(client, keep):
            out += [_error(start + c * reports_each + r, client, 1 / keep, f"net-{c}" if source else None)
                    for r in range(reports_each)]
    return out


def _windows(reports: list[ClientReport]) -> dict[tuple[str, str], RoomHealth]:
    return {(h.scope, h.key): h for h in replay.windows(reports, window_s=10, lateness_s=10) if h.window_start == T}


def test_a_client_sampled_flood_counts_its_errors_and_distinct_clients() -> None:
    room = _windows(_sampled(40_000, 2, 1 / 16))[("room", "flood")]
    assert room.errors == pytest.approx(80_000, rel=0.05)
    assert room.error_clients == pytest.approx(40_000, rel=SKETCH_3SE + 0.05)
    assert room.error_keep == 1 / 16


def test_a_keep_ratio_changing_within_the_window_leaves_the_distinct_count_unbiased() -> None:
    # Every client reports first in full (weight 1), then again at 1 in 8: each counts once, at weight 1.
    first = [_error(c, f"client-{c}") for c in range(5_000)]
    again = [r for r in _sampled(5_000, 1, 1 / 8, start=10_000)]
    room = _windows(first + again)[("room", "flood")]
    assert room.error_clients == pytest.approx(5_000, rel=SKETCH_3SE)  # the largest weight would say ~9,400
    assert room.errors == pytest.approx(10_000, rel=0.05)
    assert room.error_keep == 1 / 8


def test_sampled_stamped_clients_keep_the_capped_count_right_and_name_no_source() -> None:
    healths = _windows(_sampled(400, 1, 1 / 4, source=True))
    room = healths[("room", "flood")]
    assert room.error_clients == pytest.approx(400, rel=0.3)
    assert room.capped_error_clients == room.error_clients  # one client per network: nothing to cap
    assert room.error_sources == pytest.approx(room.error_clients)
    region = healths[("region", "eu")]
    assert region.capped_error_clients == pytest.approx(room.capped_error_clients)


def test_the_scopes_say_their_counts_were_sampled_and_unsampled_windows_do_not() -> None:
    healths = _windows(_sampled(1_000, 1, 1 / 4))
    assert {healths[(scope, key)].error_keep for scope, key in (("region", "eu"), ("global", "all"))} == {0.25}
    plain = _windows([_error(i, f"c{i}") for i in range(50)])
    assert plain[("room", "flood")].error_keep == 1.0 == plain[("global", "all")].error_keep
