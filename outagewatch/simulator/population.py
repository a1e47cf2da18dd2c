"""Simulated listeners as numpy rows, and which of them an effect touches.

A ``Pool`` is a set of listeners (one row each: client number, room,
platform, app version, region, heartbeat phase); ``CompiledSelector`` turns a
scenario ``Selector`` into a row mask. A selector's ``fraction`` keeps the
listeners whose ``unit_hash`` is below it: a stable choice, so the same
listeners fail for the whole incident, and one that grows as the fraction
does.

>>> import numpy as np
>>> h = unit_hash(np.arange(100_000), salt=3)
>>> float(h.min()) >= 0.0 and float(h.max()) < 1.0, round(float((h < 0.3).mean()), 2)
(True, 0.3)
>>> bool((unit_hash(np.arange(5), 3) == unit_hash(np.arange(5), 3)).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.schemas import PLATFORMS

from .scenarios import Effect
from .world import REGIONS, VERSION_NAMES, World

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def unit_hash(uid: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) per client number (splitmix64 of the number and ``salt``)."""
    with np.errstate(over="ignore"):
        x = uid.astype(np.uint64) + np.uint64(salt + 1) * _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        x = x ^ (x >> np.uint64(31))
    unit: np.ndarray = (x >> np.uint64(11)).astype(np.float64) / float(2**53)
    return unit


@dataclass
class Pool:
    uid: np.ndarray
    room: np.ndarray
    platform: np.ndarray
    version: np.ndarray
    region: np.ndarray
    phase: np.ndarray

    def take(self, keep: np.ndarray) -> Pool:
        return Pool(*(getattr(self, name)[keep] for name in POOL_FIELDS))

    def extend(self, other: Pool) -> Pool:
        return Pool(*(np.concatenate([getattr(self, name), getattr(other, name)]) for name in POOL_FIELDS))

    @property
    def size(self) -> int:
        return int(self.uid.shape[0])


POOL_FIELDS = ("uid", "room", "platform", "version", "region", "phase")


def empty_pool() -> Pool:
    empty = np.zeros(0, dtype=np.int64)
    return Pool(empty, empty, empty, empty, empty, empty)


class CompiledSelector:
    def __init__(self, effect: Effect, world: World):
        s = effect.selector
        index = world.room_index
        unknown = [room for room in (*s.rooms, *s.exclude_rooms) if room not in index]
        if unknown:
            raise ValueError(f"effect {effect.name!r} names rooms {unknown} this world lacks; use more --rooms")
        if not 0.0 < s.fraction <= 1.0:
            raise ValueError(f"effect {effect.name!r}: selector fraction must be in (0, 1], got {s.fraction}")
        self.rooms = np.array([index[room] for room in s.rooms], dtype=np.int64)
        self.exclude = np.array([index[room] for room in s.exclude_rooms], dtype=np.int64)
        self.cluster = REGIONS.index(s.cluster) if s.cluster else -1
        self.region = REGIONS.index(s.region) if s.region else -1
        self.platform = PLATFORMS.index(s.platform) if s.platform else -1
        self.version = VERSION_NAMES.index(s.app_version) if s.app_version else -1
        self.fraction, self.salt = s.fraction, s.salt
        self.room_cluster = world.room_cluster

    def mask(self, pool: Pool) -> np.ndarray:
        """The selected rows: those matching the selector whose ``unit_hash`` is below its fraction."""
        mask = self.matching(pool)
        if self.fraction < 1.0:
            mask &= unit_hash(pool.uid, self.salt) < self.fraction
        return mask

    def people(self, pool: Pool, row_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, people)``: the rows with someone selected, and how many of a row's ``row_weight`` are.

        A row standing for w people (a seat) holds ``floor(fraction * w + 1 - u)`` selected ones, u its
        ``unit_hash``: fraction * w on average, the same ones every second, and for a row of one person
        exactly ``mask``'s choice. Choosing whole seats instead would put a 1 % slice of a version
        into the two or three seats the hash picks, which may all sit in one room.

        >>> import numpy as np
        >>> from outagewatch.simulator.scenarios import Effect, Selector
        >>> pool = Pool(*(np.zeros(10_000, dtype=np.int64) for _ in POOL_FIELDS))
        >>> pool.uid = np.arange(10_000)
        >>> class OneRoom:
        ...     room_index, room_cluster = {}, np.zeros(1, dtype=np.int64)
        >>> selector = CompiledSelector(Effect("e", Selector(fraction=0.01, salt=1), ()), OneRoom())  # type: ignore[arg-type]
        >>> rows, people = selector.people(pool, np.full(10_000, 300.0))
        >>> rows.shape[0], round(float(people.sum()) / 10_000, 1)   # every seat holds about 3 of its 300
        (10000, 3.0)
        >>> rows, people = selector.people(pool, np.ones(10_000))
        >>> bool((rows == np.flatnonzero(selector.mask(pool))).all()), set(people.tolist())
        (True, {1.0})
        """
        rows = np.flatnonzero(self.matching(pool))
        weight = row_weight[rows]
        if self.fraction >= 1.0:
            return rows, weight
        people = np.floor(self.fraction * weight + 1.0 - unit_hash(pool.uid[rows], self.salt))
        keep = people > 0
        return rows[keep], people[keep]

    def matching(self, pool: Pool) -> np.ndarray:
        """The rows the selector's rooms, cluster, region, platform and version name (before its fraction)."""
        mask = np.ones(pool.size, dtype=bool)
        if self.rooms.size:
            mask &= np.isin(pool.room, self.rooms)
        if self.exclude.size:
            mask &= ~np.isin(pool.room, self.exclude)
        if self.cluster >= 0:
            mask &= self.room_cluster[pool.room] == self.cluster
        if self.region >= 0:
            mask &= pool.region == self.region
        if self.platform >= 0:
            mask &= pool.platform == self.platform
        if self.version >= 0:
            mask &= pool.version == self.version
        return mask

    def share_mask(self, pool: Pool, share: float) -> np.ndarray:
        """The selected listeners within ``share`` (0..1) of the selection, a subset growing with it."""
        if share >= 1.0:
            return self.mask(pool)
        return self.mask(pool) & (unit_hash(pool.uid, self.salt) < self.fraction * share)


@dataclass
class Part:
    """Reports of one kind from pool rows; None columns take the engine's defaults (``engine.assemble``).

    ``origin`` is the effect that caused each report, ``weight`` the listeners
    it stands for, ``client`` its client number (a person of a weighted
    listener), ``offset`` milliseconds after the tick's jitter, ``hold`` when
    it may leave its client at the earliest.
    """

    pool: Pool
    kind: int
    code: np.ndarray
    origin: np.ndarray | None = None
    weight: np.ndarray | None = None
    client: np.ndarray | None = None
    offset: np.ndarray | None = None
    hold: np.ndarray | None = None

    def take(self, keep: np.ndarray) -> Part:
        def cut(column: np.ndarray | None) -> np.ndarray | None:
            return None if column is None else column[keep]
        return Part(self.pool.take(keep), self.kind, self.code[keep], cut(self.origin), cut(self.weight),
                    cut(self.client), cut(self.offset), cut(self.hold))


# An active effect this tick: its index, itself, its compiled selector, its intensity.
Active = tuple[int, Effect, CompiledSelector, float]
