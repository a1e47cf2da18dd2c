"""Fair admission in a storm: the rooms that flood the collector are sampled, the others are not.

When one room's clients all fail at once, that room's error reports are the
most redundant data the collector receives: once a window has proven that
thousands of distinct clients fail, a thousand more change only the count,
and a weighted sample keeps the count right. So when the collector is under
load, the rooms over ``room_share`` of its recent reports (``RoomLoad``) have
their error reports sampled, and every other room keeps full visibility:

- **By client.** A flooding room's error report is kept when a keyed hash of
  its ``client_id`` and ``room_id`` falls under the room's keep ratio
  ``p``, and then carries ``weight / p``. A kept client's reports are all
  kept, so the worker's distinct error clients (the smallest weight a client
  reported, ``streams.distinct``) and every count stay unbiased; a client's
  retry gets the same decision, and the levels nest (a client kept at 1/8 is
  kept at 1/4), so a room's keep ratio may change within a window. The hash
  is keyed by ``collector.source_secret``: independent of the worker's
  bottom-k hash, and no client can pick an id that is always kept.
- **How hard.** ``p`` halves with the collector's load (requests in flight
  over ``max_inflight_requests``) from ``start_load`` on, down to
  ``min_keep``; but a room keeps at least ``min_kept_per_second`` of its
  reports, so a room sending fewer is never sampled and a sampled room's
  counts stay precise. Joins and leaves are never sampled; heartbeats are
  sampled by ``report_id`` as before (``collectors.sampling``), a flooding
  room's at the collector's whole load, the others' at the load their own
  requests make.
- **Admission.** A request's share of reports from flooding rooms is what it
  holds of the in-flight count for them (``Admission.flooding_share``): the
  503 past ``max_inflight_requests`` counts only the rest, so a flood turns
  into sampling of its room, not into 503s for everyone (see
  ``collectors.server``).

>>> from core.schemas import ClientReport
>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> sampler = StormSampler(StormPolicy(min_kept_per_second=100), seed=7, clock=clock)
>>> def errors(room, n, start):
...     return [ClientReport(report_id=f"{room}-{i}", ts=1_795_323_600_000, client_id=f"c{i}", room_id=room,
...                          kind="error", error_code="crash", platform="ios") for i in range(start, start + n)]
>>> for step in range(200):  # 2 s: 10,000 error reports/s from one room, 100/s from another
...     admitted = sampler.admit(errors("flood", 100, 100 * step) + errors("quiet", 1, step), load=1.0, load_other=0.1)
...     clock.advance(10)
>>> kept = [r for r in admitted.kept if r.room_id == "flood"]
>>> sampler.keep_ratio("flood"), {r.weight for r in kept}, len(admitted.kept) - len(kept), admitted.errors_out > 0
(0.015625, {64.0}, 1, True)
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from xxhash import xxh3_64_intdigest

from collectors.roomload import RoomLoad
from collectors.sampling import MAX_WEIGHT, SamplingPolicy, keep_probability, sample_heartbeats
from core.config import CollectorSettings, ConfigError
from core.schemas import ClientReport
from core.timeutil import Clock

log = logging.getLogger("collectors.storm")

_HASH_SPACE = 2**64
# A room not seen flooding for this long is no longer reported as sampled.
SAMPLED_FOR_MS = 2_000


@dataclass(frozen=True)
class StormPolicy:
    enabled: bool = True
    # A room over this share of the collector's recent reports is flooding.
    room_share: float = 0.25
    # The smallest fraction of a flooding room's error clients kept (a power of two is exact).
    min_keep: float = 1 / 64
    # A flooding room keeps at least about this many reports/s (per collector): fewer are never sampled.
    min_kept_per_second: float = 1000.0
    # Load (requests in flight over max_inflight_requests) at which flooding rooms start being sampled.
    start_load: float = 0.25
    # How fast the room counts forget (RoomLoad).
    half_life_ms: int = 1000
    # Rooms the load table keeps (twice as many at most before it prunes).
    max_rooms: int = 4096

    def __post_init__(self) -> None:
        if not 0 < self.room_share <= 1:
            raise ConfigError(f"OUTAGEWATCH_COLLECTOR_STORM_ROOM_SHARE (collector.storm_room_share) must be in "
                              f"(0, 1], a share of the collector's reports; got {self.room_share!r}")
        if not 0 < self.min_keep <= 1:
            raise ConfigError(f"OUTAGEWATCH_COLLECTOR_STORM_MIN_KEEP (collector.storm_min_keep) must be in (0, 1], "
                              f"e.g. 0.015625 (1 in 64); got {self.min_keep!r}")
        if not self.min_kept_per_second >= 0:
            raise ConfigError("OUTAGEWATCH_COLLECTOR_STORM_MIN_KEPT_PER_SECOND (collector.storm_min_kept_per_second) "
                              f"must be a number of reports/s >= 0; got {self.min_kept_per_second!r}")

    @classmethod
    def from_settings(cls, c: CollectorSettings) -> StormPolicy:
        if c.storm_max_inflight_requests < c.max_inflight_requests:
            raise ConfigError(
                f"OUTAGEWATCH_COLLECTOR_STORM_MAX_INFLIGHT_REQUESTS (collector.storm_max_inflight_requests, "
                f"{c.storm_max_inflight_requests}) must be at least OUTAGEWATCH_COLLECTOR_MAX_INFLIGHT_REQUESTS "
                f"({c.max_inflight_requests}): it bounds the requests in flight counting those of flooding rooms")
        return cls(enabled=c.storm_sampling, room_share=c.storm_room_share, min_keep=c.storm_min_keep,
                   min_kept_per_second=c.storm_min_kept_per_second)


def storm_seed(secret: bytes) -> int:
    """The client hash's seed: from the collector's source secret, so collectors sharing it agree.

    >>> storm_seed(b"k") == storm_seed(b"k") != storm_seed(b"other")
    True
    """
    return int.from_bytes(hashlib.blake2b(secret, digest_size=8, person=b"storm-sample").digest(), "little")


def at_least(fraction: float) -> float:
    """The smallest power of two (1, 1/2, 1/4, ...) not below ``fraction``.

    >>> [at_least(x) for x in (2.0, 1.0, 0.6, 0.185, 1 / 64, 0.0)]
    [1.0, 1.0, 1.0, 0.25, 0.015625, 0.0]
    """
    if fraction >= 1.0:
        return 1.0
    if fraction <= 0.0:
        return 0.0
    return 2.0 ** -math.floor(math.log2(1 / fraction))


@dataclass
class Admission:
    """What one request keeps: reports (the sampled ones re-weighted), how many were dropped, and the share
    of its reports that came from flooding rooms."""

    kept: list[ClientReport]
    heartbeats_out: int = 0
    errors_out: int = 0
    flooding_share: float = 0.0
    # The keep ratio of the other rooms' heartbeats (the collector's heartbeat gauge).
    heartbeat_keep: float = 1.0

    @property
    def sampled_out(self) -> int:
        return self.heartbeats_out + self.errors_out


@dataclass
class SampledRoom:
    """A room being sampled: its keep ratio, share and rate when last seen, and when that was."""

    keep: float
    share: float
    per_second: float
    seen_ms: int


class StormSampler:
    """The collector's sampling decision per request: flooding rooms by client, heartbeats by report."""

    def __init__(self, policy: StormPolicy, seed: int, clock: Clock,
                 heartbeats: SamplingPolicy | None = None) -> None:
        self.policy = policy
        self.heartbeats = heartbeats or SamplingPolicy()
        self.rooms = RoomLoad(policy.half_life_ms, policy.room_share, policy.max_rooms, clock)
        self._load_policy = SamplingPolicy(start_load=policy.start_load, min_keep=policy.min_keep)
        self._seed = seed
        self._clock = clock
        self.sampled: dict[str, SampledRoom] = {}
        self._swept_ms = clock.now_ms()

    def keep_for(self, per_second: float, load: float) -> float:
        """A flooding room's keep ratio at ``load``, given its reports/s (never below min_kept_per_second)."""
        by_load = keep_probability(load, self._load_policy)
        if by_load >= 1.0 or per_second <= 0:
            return 1.0
        return max(by_load, at_least(self.policy.min_kept_per_second / per_second))

    def keep_ratio(self, room: str) -> float:
        """The keep ratio ``room`` was last sampled at (1.0: not sampled)."""
        entry = self.sampled.get(room)
        return entry.keep if entry is not None else 1.0

    def admit(self, reports: list[ClientReport], load: float, load_other: float) -> Admission:
        """Sample ``reports`` (fresh, deduplicated) at the collector's ``load`` and the others' ``load_other``."""
        heartbeat_keep = keep_probability(load_other, self.heartbeats)
        if not self.policy.enabled:
            kept, dropped = sample_heartbeats(reports, heartbeat_keep)
            return Admission(kept, dropped, heartbeat_keep=heartbeat_keep)
        flooding = self.rooms.add(reports)
        self._sweep()
        if not flooding:
            if heartbeat_keep >= 1.0:
                return Admission(reports)
            kept, dropped = sample_heartbeats(reports, heartbeat_keep)
            return Admission(kept, dropped, heartbeat_keep=heartbeat_keep)
        now = self._clock.now_ms()
        keeps: dict[str, float] = {}
        for room, (_, per_second) in flooding.items():
            keep = keeps[room] = self.keep_for(per_second, load)
            if keep < 1.0:
                self._note(room, keep, per_second, now)
        share = sum(n for n, _ in flooding.values()) / len(reports)
        flooding_heartbeat_keep = keep_probability(load, self.heartbeats)
        if flooding_heartbeat_keep >= 1.0 and min(keeps.values()) >= 1.0:  # flooding, but the collector keeps up
            return Admission(reports, flooding_share=share)
        return self._sample(reports, keeps, heartbeat_keep, flooding_heartbeat_keep, share)

    def _sample(self, reports: list[ClientReport], keeps: dict[str, float], heartbeat_keep: float,
                flooding_heartbeat_keep: float, share: float) -> Admission:
        others = [report for report in reports if report.room_id not in keeps]
        kept, heartbeats_out = sample_heartbeats(others, heartbeat_keep)
        floods, flood_heartbeats_out = sample_heartbeats([report for report in reports if report.room_id in keeps],
                                                         flooding_heartbeat_keep)
        seed = self._seed
        errors_out = 0
        for report in floods:
            keep = keeps[report.room_id]
            if report.kind == "error" and keep < 1.0:
                hashed = xxh3_64_intdigest(f"{report.room_id}\x1f{report.client_id}".encode(), seed)
                if hashed >= int(keep * _HASH_SPACE):
                    errors_out += 1
                    continue
                report.weight = min(MAX_WEIGHT, report.weight / keep)
            kept.append(report)
        return Admission(kept, heartbeats_out + flood_heartbeats_out, errors_out, share, heartbeat_keep)

    def _note(self, room: str, keep: float, per_second: float, now_ms: int) -> None:
        entry = self.sampled.get(room)
        if entry is None:
            log.warning("room %r is flooding the collector (%.0f%% of its reports, %.0f reports/s): its error "
                        "reports are now sampled by client, 1 in %d kept with weight %d; other rooms are not "
                        "sampled", room, 100 * self.rooms.share(room), per_second, round(1 / keep), round(1 / keep))
            self.sampled[room] = SampledRoom(keep, self.rooms.share(room), per_second, now_ms)
            return
        entry.keep, entry.per_second, entry.seen_ms = keep, per_second, now_ms
        entry.share = self.rooms.share(room)

    def _sweep(self) -> None:
        """Forget (and log) the rooms no longer sampled; at most once a second."""
        now = self._clock.now_ms()
        if now - self._swept_ms < 1000 or not self.sampled:
            return
        self._swept_ms = now
        for room in [room for room, entry in self.sampled.items() if now - entry.seen_ms > SAMPLED_FOR_MS]:
            del self.sampled[room]
            log.warning("room %r no longer floods the collector (%.0f%% of its reports now): its error reports are "
                        "kept in full again", room, 100 * self.rooms.share(room))

    def current(self) -> list[tuple[str, SampledRoom]]:
        """The rooms sampled within ``SAMPLED_FOR_MS``, the ones sending the most first."""
        now = self._clock.now_ms()
        current = [(room, entry) for room, entry in self.sampled.items() if now - entry.seen_ms <= SAMPLED_FOR_MS]
        return sorted(current, key=lambda item: (-item[1].per_second, item[0]))
