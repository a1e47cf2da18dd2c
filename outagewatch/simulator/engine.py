"""The tick loop: one second of event time at a time, vectorised with numpy.

Listeners are rows of a few numpy arrays (room, platform, app version,
region, heartbeat phase), not Python objects. Each tick: some leave (session
churn, rooms shrinking or closing), some try to join (rooms growing towards
their audience; a failed join is a ``join_failed`` error and the client
retries later), the ones whose 30-second phase comes up send a heartbeat, and
errors are drawn as Poisson counts over the listeners an effect selects.

Scale: audiences are multiplied by ``scale``; every generated report has
weight 1, so report counts are ``scale`` times the full-size world's while
ratios (error ratio, errors per listener) are the same. Server metrics
describe the full-size world (load = listeners / scale), so CPU, latency and
connections read the same at every scale. A spammer's rate is not scaled: it
is one client.

>>> ticks = list(generate("room_failure", seed=1, scale=0.01, duration_s=5, rooms=20))
>>> len(ticks), ticks[0].start_ms, ticks[1].start_ms - ticks[0].start_ms
(5, 1795392000000, 1000)
>>> all(r.room_id.startswith("room-") for r in ticks[4].client_reports())
True
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.schemas import ERROR_CODES, KINDS, PLATFORMS, ClientReport, MetricSample

from . import metrics
from .scenarios import Effect, Scenario, get_scenario
from .wire import Naming, ReportColumns, json_lines, to_client_reports
from .world import (
    BASE_ERROR_MIX,
    BASE_ERROR_RATE,
    BASE_JOIN_FAILURE,
    BASE_LATENCY_MS,
    DEFAULT_START_MS,
    HEARTBEAT_PERIOD_S,
    MEAN_SESSION_S,
    PLATFORM_SHARE,
    REGION_SHARE,
    REGIONS,
    SERVICES,
    VERSION_NAMES,
    World,
    build_world,
    rhythm,
    version_tables,
)

HEARTBEAT, JOIN, LEAVE, ERROR = (KINDS.index(k) for k in ("heartbeat", "join", "leave", "error"))
JOIN_FAILED = ERROR_CODES.index("join_failed")
# Waiting clients (room not full yet, or a failed join) try again every ~5 s.
JOIN_RETRY_PER_S = 0.2
METRICS_INTERVAL_S = 10
_SPAMMER_UID = 10**12


class Tick:
    """One second of event time: its client reports (ordered by ``ts``) and metric samples."""

    def __init__(self, start_ms: int, columns: ReportColumns, metric_samples: list[MetricSample], naming: Naming):
        self.start_ms = start_ms
        self.end_ms = start_ms + 1000
        self.columns = columns
        self.metrics = metric_samples
        self._naming = naming
        self._lines: list[bytes] | None = None

    @property
    def n_reports(self) -> int:
        return len(self.columns)

    def report_lines(self) -> list[bytes]:
        """The reports as JSON objects (bytes), exactly as the targets send them."""
        if self._lines is None:
            self._lines = json_lines(self.columns, self._naming)
        return self._lines

    def client_reports(self) -> list[ClientReport]:
        return to_client_reports(self.report_lines())

    def report_rooms(self) -> list[str]:
        rooms = self._naming.room_ids
        return [rooms[index] for index in self.columns.room.tolist()]


@dataclass
class _Pool:
    uid: np.ndarray
    room: np.ndarray
    platform: np.ndarray
    version: np.ndarray
    region: np.ndarray
    phase: np.ndarray

    def take(self, keep: np.ndarray) -> _Pool:
        return _Pool(*(getattr(self, name)[keep] for name in _POOL_FIELDS))

    def extend(self, other: _Pool) -> _Pool:
        return _Pool(*(np.concatenate([getattr(self, name), getattr(other, name)]) for name in _POOL_FIELDS))


_POOL_FIELDS = ("uid", "room", "platform", "version", "region", "phase")


class _CompiledSelector:
    def __init__(self, effect: Effect, world: World):
        s = effect.selector
        index = world.room_index
        unknown = [room for room in (*s.rooms, *s.exclude_rooms) if room not in index]
        if unknown:
            raise ValueError(f"effect {effect.name!r} names rooms {unknown} this world lacks; use more --rooms")
        self.rooms = np.array([index[room] for room in s.rooms], dtype=np.int64)
        self.exclude = np.array([index[room] for room in s.exclude_rooms], dtype=np.int64)
        self.cluster = REGIONS.index(s.cluster) if s.cluster else -1
        self.region = REGIONS.index(s.region) if s.region else -1
        self.platform = PLATFORMS.index(s.platform) if s.platform else -1
        self.version = VERSION_NAMES.index(s.app_version) if s.app_version else -1
        self.room_cluster = world.room_cluster

    def mask(self, room: np.ndarray, platform: np.ndarray, version: np.ndarray, region: np.ndarray) -> np.ndarray:
        mask = np.ones(room.shape[0], dtype=bool)
        if self.rooms.size:
            mask &= np.isin(room, self.rooms)
        if self.exclude.size:
            mask &= ~np.isin(room, self.exclude)
        if self.cluster >= 0:
            mask &= self.room_cluster[room] == self.cluster
        if self.region >= 0:
            mask &= region == self.region
        if self.platform >= 0:
            mask &= platform == self.platform
        if self.version >= 0:
            mask &= version == self.version
        return mask


def generate(
    scenario: str | Scenario,
    seed: int = 0,
    scale: float = 1.0,
    *,
    duration_s: int | None = None,
    rooms: int | None = None,
    start_ms: int = DEFAULT_START_MS,
    metrics_interval_s: int = METRICS_INTERVAL_S,
) -> Iterator[Tick]:
    """Event-time ordered ticks of one second for ``scenario``; same arguments, same output."""
    plan = get_scenario(scenario)
    if scale <= 0:
        raise ValueError("scale must be > 0")
    duration = int(plan.duration_s if duration_s is None else duration_s)
    world = build_world(plan.rooms_default if rooms is None else rooms, seed,
                        {room: (spec.cluster, spec.main_region_share) for room, spec in plan.rooms.items()})
    naming = Naming(world.room_ids, f"{plan.name}-{seed}-", f"c{seed:x}-")
    state = _Engine(plan, world, seed, scale, start_ms)
    for second in range(duration):
        event_ms = start_ms + second * 1000
        columns = state.step(second, event_ms)
        samples = state.metric_samples(second, event_ms) if second % metrics_interval_s == 0 else []
        yield Tick(event_ms, columns, samples, naming)


class _Engine:
    def __init__(self, plan: Scenario, world: World, seed: int, scale: float, start_ms: int):
        self.plan, self.world, self.scale = plan, world, scale
        self.rng = np.random.default_rng(seed)
        self.selectors = [_CompiledSelector(effect, world) for effect in plan.effects]
        self.special = [(world.room_index[room], spec) for room, spec in plan.rooms.items()]
        self.region_cdf = np.cumsum(REGION_SHARE)[:-1]
        self.platform_cdf = np.cumsum(PLATFORM_SHARE)[:-1]
        _, version_idx, version_share = version_tables()
        width = max(len(idx) for idx in version_idx)
        self.version_table = np.zeros((len(version_idx), width), dtype=np.int64)
        self.version_cdf = np.full((len(version_idx), width), 2.0)  # 2.0: never reached by a draw in [0, 1)
        for p, (idx, share) in enumerate(zip(version_idx, version_share, strict=True)):
            self.version_table[p, : len(idx)] = idx
            self.version_cdf[p, : len(idx) - 1] = np.cumsum(share)[:-1]
        empty = np.zeros(0, dtype=np.int64)
        self.pool = _Pool(empty, empty, empty, empty, empty, empty)
        self.next_uid = 0
        self.next_seq = 0
        self.intensity = np.zeros(len(plan.effects))
        self.join_attempts: np.ndarray = np.zeros(len(world.room_ids))
        self.base_mix = np.array(list(BASE_ERROR_MIX.values()))
        # Start with the rooms already at their audience, silently: a run
        # must not open with every listener of the world joining at once.
        self.pool = self.new_listeners(np.round(self.targets(0, start_ms)).astype(np.int64))

    def targets(self, second: int, event_ms: int) -> np.ndarray:
        world = self.world
        audience = world.base_audience * rhythm(event_ms, world.cluster_offsets_h)
        for index, spec in self.special:
            audience[index] = spec.audience_at(second)
        scaled: np.ndarray = audience * self.scale
        return scaled

    def step(self, second: int, event_ms: int) -> ReportColumns:
        rng, n_rooms = self.rng, len(self.world.room_ids)
        self.intensity = np.array([effect.intensity_at(second) for effect in self.plan.effects])
        target = self.targets(second, event_ms)
        pool = self.pool
        counts = np.bincount(pool.room, minlength=n_rooms).astype(np.float64)

        # Leaves: session churn, rooms shrinking towards their audience, closed rooms.
        surplus = np.clip((counts - target) / np.maximum(counts, 1.0) * 0.1, 0.0, 1.0)
        p_leave = np.where(target < 0.5, 1.0, 1.0 / MEAN_SESSION_S + surplus)
        leaving = rng.random(pool.uid.shape[0]) < p_leave[pool.room]
        leavers = pool.take(leaving)
        pool = pool.take(~leaving)

        # Joins: waiting clients try, some fail (and stay waiting).
        deficit = np.maximum(0.0, target - np.bincount(pool.room, minlength=n_rooms))
        attempts: np.ndarray = rng.poisson(deficit * JOIN_RETRY_PER_S)
        self.join_attempts = attempts.astype(np.float64)
        newcomers = self.new_listeners(attempts)
        p_fail = np.full(newcomers.uid.shape[0], BASE_JOIN_FAILURE)
        for effect, selector, level in self.active():
            if effect.join_failure:
                p_fail += effect.join_failure * level * selector.mask(
                    newcomers.room, newcomers.platform, newcomers.version, newcomers.region)
        failed = rng.random(newcomers.uid.shape[0]) < np.minimum(p_fail, 0.95)
        joined, rejected = newcomers.take(~failed), newcomers.take(failed)

        beating = pool.take(pool.phase == second % HEARTBEAT_PERIOD_S)
        errors, codes = self.errors(pool)
        self.pool = pool.extend(joined)

        parts = [
            (beating, HEARTBEAT, np.full(beating.uid.shape[0], -1)),
            (joined, JOIN, np.full(joined.uid.shape[0], -1)),
            (leavers, LEAVE, np.full(leavers.uid.shape[0], -1)),
            (rejected, ERROR, np.full(rejected.uid.shape[0], JOIN_FAILED)),
            (errors, ERROR, codes),
        ]
        return self.assemble(parts, event_ms)

    def active(self) -> Iterator[tuple[Effect, _CompiledSelector, float]]:
        for effect, selector, level in zip(self.plan.effects, self.selectors, self.intensity, strict=True):
            if level > 0:
                yield effect, selector, float(level)

    def new_listeners(self, attempts: np.ndarray) -> _Pool:
        """Listeners trying to join, ``attempts[r]`` of them for room ``r``."""
        rng, world = self.rng, self.world
        n = int(attempts.sum())
        room = np.repeat(np.arange(attempts.shape[0]), attempts)
        draws = rng.random((4, n))
        home = draws[0] < world.main_region_share[room]
        elsewhere = np.searchsorted(self.region_cdf, draws[1], side="right")
        region = np.where(home, world.room_cluster[room], elsewhere)
        platform = np.searchsorted(self.platform_cdf, draws[2], side="right")
        # Versions: the k-th version of the platform, k from the platform's cumulative shares.
        k = (draws[3][:, None] >= self.version_cdf[platform]).sum(axis=1)
        version = self.version_table[platform, k]
        uid = np.arange(self.next_uid, self.next_uid + n, dtype=np.int64)
        self.next_uid += n
        phase = (draws[0] * 1e6).astype(np.int64) % HEARTBEAT_PERIOD_S
        return _Pool(uid, room, platform, version, region.astype(np.int64), phase)

    def errors(self, pool: _Pool) -> tuple[_Pool, np.ndarray]:
        """The background errors plus every active effect's, as (who, code)."""
        rng = self.rng
        size = pool.uid.shape[0]
        picks: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        codes: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        if size:
            n_base = rng.poisson(size * BASE_ERROR_RATE)
            picks.append(rng.integers(0, size, size=n_base))
            codes.append(rng.choice(len(ERROR_CODES), size=n_base, p=self.base_mix))
        spam: list[tuple[_Pool, np.ndarray]] = []
        for effect, selector, level in self.active():
            if effect.spam_per_s:
                spam.append(self.spammer(effect, selector, level))
                continue
            chosen = np.flatnonzero(selector.mask(pool.room, pool.platform, pool.version, pool.region))
            if not chosen.shape[0]:
                continue
            for code, rate in effect.error_rates.items():
                k = rng.poisson(chosen.shape[0] * rate * level)
                picks.append(chosen[rng.integers(0, chosen.shape[0], size=k)])
                codes.append(np.full(k, ERROR_CODES.index(code)))
        out, code_column = pool.take(np.concatenate(picks)), np.concatenate(codes)
        for spammer, spam_codes in spam:
            out, code_column = out.extend(spammer), np.concatenate([code_column, spam_codes])
        return out, code_column

    def spammer(self, effect: Effect, selector: _CompiledSelector, level: float) -> tuple[_Pool, np.ndarray]:
        """One misbehaving install (a fixed client id) repeating one error in the effect's room."""
        n = int(self.rng.poisson(effect.spam_per_s * level))
        room = int(selector.rooms[0]) if selector.rooms.size else 0
        ones = np.ones(n, dtype=np.int64)
        who = _Pool(ones * _SPAMMER_UID, ones * room, ones * PLATFORMS.index("android"),
                    ones * VERSION_NAMES.index("7.38.5"), ones * int(self.world.room_cluster[room]), ones * 0)
        return who, ones * ERROR_CODES.index(effect.spam_code)

    def assemble(self, parts: list[tuple[_Pool, int, np.ndarray]], event_ms: int) -> ReportColumns:
        rng = self.rng
        pool = parts[0][0]
        for part, _, _ in parts[1:]:
            pool = pool.extend(part)
        kind = np.concatenate([np.full(part.uid.shape[0], k) for part, k, _ in parts])
        code = np.concatenate([c for _, _, c in parts])
        n = kind.shape[0]
        ts = np.asarray(rng.integers(0, 1000, size=n), dtype=np.int64) + event_ms
        latency = np.asarray(rng.lognormal(0.0, 0.35, size=n)) * BASE_LATENCY_MS
        factor = np.ones(n)
        for effect, selector, level in self.active():
            if effect.latency_factor != 1.0:
                factor *= 1.0 + (effect.latency_factor - 1.0) * level * selector.mask(
                    pool.room, pool.platform, pool.version, pool.region)
        latency = np.where((kind == HEARTBEAT) | (kind == JOIN), np.round(latency * factor, 1), np.nan)
        order = np.argsort(ts, kind="stable")
        seq = np.arange(self.next_seq, self.next_seq + n, dtype=np.int64)
        self.next_seq += n
        return ReportColumns(
            ts=ts[order], kind=kind[order], code=code[order], client=pool.uid[order], room=pool.room[order],
            platform=pool.platform[order], version=pool.version[order], region=pool.region[order],
            latency=latency[order], seq=seq,
        )

    def metric_samples(self, second: int, event_ms: int) -> list[MetricSample]:
        world, pool, scale = self.world, self.pool, self.scale
        n_clusters = len(REGIONS)
        by_room = np.bincount(pool.room, minlength=len(world.room_ids)) / scale
        hosted = np.bincount(world.room_cluster, weights=by_room, minlength=n_clusters)
        joining = np.bincount(world.room_cluster, weights=self.join_attempts / scale, minlength=n_clusters)
        served = np.bincount(pool.region, minlength=n_clusters) / scale
        strain = np.zeros((len(SERVICES), n_clusters))
        for effect, _, level in self.active():
            for item in effect.strain:
                row = SERVICES.index(item.service)
                cols = slice(None) if item.cluster == "*" else REGIONS.index(item.cluster)
                strain[row, cols] = np.maximum(strain[row, cols], item.level * level)
        return metrics.samples(event_ms, hosted, joining, served, strain, self.rng)
