"""Deterministic report streams for the detection tests: normal rooms, one spike, a surge, a spammer, an outage."""

from __future__ import annotations

from collections.abc import Iterator

from core.schemas import ClientReport

T0 = 1_795_323_600_000
ROOMS = 20
CLIENTS = 40
SPIKE_ROOM = "room-7"


def room_window(room: str, window: int, window_ms: int, *, listeners: int = CLIENTS, errors: int = 1,
                code: str = "details_not_available", error_reports_per_client: int = 1, region: str = "eu",
                start_ms: int = T0, forged_ids: int = 0) -> Iterator[ClientReport]:
    """One window of one room: every listener heartbeats, the first ``errors`` of them also report ``code``;
    ``forged_ids`` more errors come from one script (one source stamp), each under an invented client id."""
    base = start_ms + window * window_ms
    for fake in range(forged_ids):
        yield ClientReport(report_id=f"{room}-{window}-fake{fake}", ts=base + (fake * window_ms) // (2 * forged_ids),
                           client_id=f"invented-{window}-{fake}", room_id=room, kind="error", error_code=code,
                           platform="ios", region=region, app_version="5.1", source="one-script")
    for client in range(listeners):
        # Spread over the first half of the window: nothing is late, the order is the order of time.
        ts = base + (client * window_ms) // (2 * listeners)
        yield ClientReport(report_id=f"{room}-{window}-{client}-hb", ts=ts, client_id=f"{room}-c{client}",
                           room_id=room, kind="heartbeat", platform="ios", region=region, app_version="5.1")
        if client < errors:
            for repeat in range(error_reports_per_client):
                yield ClientReport(report_id=f"{room}-{window}-{client}-e{repeat}", ts=ts + 1,
                                   client_id=f"{room}-c{client}", room_id=room, kind="error", error_code=code,
                                   platform="ios", region=region, app_version="5.1")


def world(windows: int, window_ms: int, special: dict[str, dict[int, dict[str, int | str]]] | None = None,
          rooms: int = ROOMS, region_of: dict[str, str] | None = None,
          start_ms: int = T0) -> Iterator[ClientReport]:
    """``rooms`` normal rooms for ``windows`` windows; ``special[room][window]`` overrides ``room_window`` args."""
    special = special or {}
    region_of = region_of or {}
    for window in range(windows):
        for index in range(rooms):
            room = f"room-{index}"
            overrides = special.get(room, {}).get(window, {})
            yield from room_window(room, window, window_ms, region=region_of.get(room, "eu"), start_ms=start_ms,
                                   **overrides)  # type: ignore[arg-type]


def spike(windows: range, errors: int = 15) -> dict[int, dict[str, int | str]]:
    return {window: {"errors": errors} for window in windows}
