"""The static world: regions, platforms, app versions, rooms and their audiences.

Background rooms have Zipf-distributed audiences (room-1 is the biggest) and
follow a daily rhythm in their cluster's local time. Sizes here are
full-size listeners; the engine multiplies them by ``scale``.

>>> world = build_world(rooms=50, seed=1)
>>> world.room_ids[:3], int(world.base_audience[0]), int(world.base_audience[9])
(('room-1', 'room-2', 'room-3'), 20000, 1589)
>>> round(float(rhythm(DEFAULT_START_MS, np.array([-5.0]))[0]), 3)  # us-east, 19:00 local
1.346
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.schemas import ERROR_CODES, PLATFORMS
from core.timeutil import parse_event_time

# One cluster per region: a room is hosted in a cluster (its room-api), a
# listener connects through the audio edge of its own region.
REGIONS: tuple[str, ...] = ("us-east", "us-west", "eu-west", "ap-south", "sa-east")
REGION_SHARE = np.array([0.35, 0.20, 0.25, 0.12, 0.08])
REGION_UTC_OFFSET_H = np.array([-5.0, -8.0, 0.0, 5.5, -3.0])

PLATFORM_SHARE = np.array([0.45, 0.40, 0.12, 0.03])  # order of schemas.PLATFORMS
# (platform, version, share within the platform); the newest release first.
APP_VERSIONS: tuple[tuple[str, str, float], ...] = (
    ("ios", "7.41.0", 0.55), ("ios", "7.40.2", 0.30), ("ios", "7.39.1", 0.15),
    ("android", "7.41.1", 0.50), ("android", "7.40.0", 0.35), ("android", "7.38.5", 0.15),
    ("web", "web-2026.47", 1.0),
    ("other", "7.30.0", 1.0),
)
VERSION_NAMES: tuple[str, ...] = tuple(version for _, version, _ in APP_VERSIONS)

SERVICES: tuple[str, ...] = ("room-api", "audio-edge", "auth")
HOSTS_PER_SERVICE = 3

# Normal background: a listener reports an error about once per 100
# heartbeats (heartbeat every 30 s), spread over the codes like this.
HEARTBEAT_PERIOD_S = 30
BASE_ERROR_RATE = 1.0 / (HEARTBEAT_PERIOD_S * 100)
BASE_ERROR_MIX: Mapping[str, float] = {
    "details_not_available": 0.12, "crash": 0.08, "join_failed": 0.05, "audio_dropout": 0.28,
    "audio_garbled": 0.08, "logged_out": 0.04, "timeout": 0.20, "other": 0.15,
}
BASE_JOIN_FAILURE = 0.01
MEAN_SESSION_S = 20 * 60
BASE_LATENCY_MS = 80.0

TOP_AUDIENCE = 20_000
ZIPF_EXPONENT = 1.1
MIN_AUDIENCE = 20

DEFAULT_START_MS = parse_event_time("2026-11-23T00:00:00Z")

assert tuple(BASE_ERROR_MIX) == ERROR_CODES


@dataclass(frozen=True)
class World:
    """The rooms of a run. ``weight`` (per room, or None for 1 everywhere) is how
    many listeners one simulated client of the room stands for: a room of N
    listeners is N / weight clients (seats) whose joins and leaves carry that
    weight and whose heartbeats a third of it, three times as often (see
    ``engine``)."""

    room_ids: tuple[str, ...]
    room_cluster: np.ndarray  # int index into REGIONS, per room
    base_audience: np.ndarray  # full-size listeners per background room (0 for scripted rooms)
    main_region_share: np.ndarray  # share of a room's listeners from its own cluster's region
    cluster_offsets_h: np.ndarray  # UTC offset of each room's cluster
    weight: np.ndarray | None = None

    @property
    def room_index(self) -> dict[str, int]:
        return {room: index for index, room in enumerate(self.room_ids)}


def build_world(rooms: int, seed: int, special: Mapping[str, tuple[str, float]] | None = None) -> World:
    """Background rooms ``room-1..room-N`` plus scripted rooms ``{id: (cluster, main_region_share)}``."""
    if rooms < 1:
        raise ValueError("rooms must be at least 1")
    rng = np.random.default_rng([seed, 7])
    ranks = np.arange(1, rooms + 1)
    audience = np.maximum(MIN_AUDIENCE, np.round(TOP_AUDIENCE / ranks**ZIPF_EXPONENT))
    cluster = rng.choice(len(REGIONS), size=rooms, p=REGION_SHARE)
    room_ids = [f"room-{rank}" for rank in ranks]
    share = np.full(rooms, 0.7)
    for room_id, (cluster_name, main_share) in (special or {}).items():
        room_ids.append(room_id)
        cluster = np.append(cluster, REGIONS.index(cluster_name))
        audience = np.append(audience, 0.0)
        share = np.append(share, main_share)
    return World(
        room_ids=tuple(room_ids),
        room_cluster=cluster.astype(np.int64),
        base_audience=audience.astype(np.float64),
        main_region_share=share,
        cluster_offsets_h=REGION_UTC_OFFSET_H[cluster],
    )


def rhythm(event_ms: int, offsets_h: np.ndarray) -> np.ndarray:
    """Daily audience multiplier (0.6 at 09:00 local, 1.4 at 21:00 local)."""
    local_hour = (event_ms / 3_600_000 + offsets_h) % 24
    return 1.0 + 0.4 * np.cos(2 * np.pi * (local_hour - 21.0) / 24.0)


def platform_names() -> tuple[str, ...]:
    return PLATFORMS


def version_tables() -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Per platform: the version indexes and their shares, for vectorised draws."""
    platform_of_version = np.array([PLATFORMS.index(p) for p, _, _ in APP_VERSIONS])
    indexes = [np.flatnonzero(platform_of_version == p) for p in range(len(PLATFORMS))]
    shares = [np.array([APP_VERSIONS[i][2] for i in idx]) for idx in indexes]
    return platform_of_version, indexes, shares
