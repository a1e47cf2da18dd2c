"""The tick loop: one second of event time at a time, vectorised with numpy.

Listeners are rows of a few numpy arrays (room, platform, app version,
region, heartbeat phase), not Python objects. Each tick: some leave (session
churn, rooms shrinking or closing), some try to join (rooms growing towards
their audience; a failed join is a ``join_failed`` error and the client
retries later), the ones whose 30-second phase comes up send a heartbeat, and
errors are drawn as Poisson counts over the listeners an effect selects.
Effects can also silence listeners (``Effect.silence``): their reports are
lost, or held until the silence ends (``backfill``).

Scale: audiences are multiplied by ``scale``; every generated report has
weight 1, so report counts are ``scale`` times the full-size world's while
ratios (error ratio, errors per listener) are the same. Server metrics
describe the full-size world (load = listeners / scale), so CPU, latency and
connections read the same at every scale. A spammer's rate is not scaled: it
is one client.

Weights: a world with ``World.weight`` simulates a room of N listeners as
N / w clients whose heartbeats, joins and leaves carry weight w, and draws
its errors per person (``weighted``): counts downstream are the full-size
ones, at the cost of a few hundred clients per room. Such a run draws its
server metrics' noise from a generator of its own, so the reports do not
depend on whether metrics are generated.

>>> ticks = list(generate("room_failure", seed=1, scale=0.01, duration_s=5, rooms=20))
>>> len(ticks), ticks[0].start_ms, ticks[1].start_ms - ticks[0].start_ms
(5, 1795392000000, 1000)
>>> all(r.room_id.startswith("room-") for r in ticks[4].client_reports())
True
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from core.schemas import ERROR_CODES, KINDS, PLATFORMS, ClientReport, MetricSample

from . import metrics
from .effects import repeated, silenced
from .labels import runs
from .population import Active, CompiledSelector, Part, Pool, empty_pool
from .scenarios import Scenario, curve_at, get_scenario
from .weighted import churn, weighted_errors
from .wire import SPAMMER_CLIENTS, Naming, ReportColumns, json_lines, to_client_reports
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
# A seat (a simulated client of many people) heartbeats this often: once per 10-s window.
SEAT_BEAT_S = 10


class Tick:
    """One second of event time: its client reports (ordered by ``ts``) and metric samples."""

    def __init__(self, start_ms: int, columns: ReportColumns, metric_samples: list[MetricSample], naming: Naming):
        self.start_ms = start_ms
        self.end_ms = start_ms + 1000
        self.columns = columns
        self.metrics = metric_samples
        self.naming = naming
        self._lines: list[bytes] | None = None

    @property
    def n_reports(self) -> int:
        return len(self.columns)

    def report_lines(self) -> list[bytes]:
        """The reports as JSON objects (bytes), exactly as the targets send them."""
        if self._lines is None:
            self._lines = json_lines(self.columns, self.naming)
        return self._lines

    def client_reports(self) -> list[ClientReport]:
        return to_client_reports(self.report_lines())

    def report_rooms(self) -> list[str]:
        rooms = self.naming.room_ids
        return [rooms[index] for index in self.columns.room.tolist()]


def generate(
    scenario: str | Scenario,
    seed: int = 0,
    scale: float = 1.0,
    *,
    duration_s: int | None = None,
    rooms: int | None = None,
    start_ms: int = DEFAULT_START_MS,
    metrics_interval_s: int = METRICS_INTERVAL_S,
    world: World | None = None,
    with_metrics: bool = True,
    sources: bool = False,
) -> Iterator[Tick]:
    """Event-time ordered ticks of one second for ``scenario``; same arguments, same output.

    ``world`` replaces the Zipf background of ``rooms`` rooms (it must hold the
    scenario's special rooms); ``with_metrics=False`` generates no server metrics;
    ``sources`` writes the source stamp a collector would add (``wire``).
    """
    plan = get_scenario(scenario)
    if scale <= 0:
        raise ValueError("scale must be > 0")
    duration = int(plan.duration_s if duration_s is None else duration_s)
    if world is None:
        world = build_world(plan.rooms_default if rooms is None else rooms, seed,
                            {room: (spec.cluster, spec.main_region_share) for room, spec in plan.rooms.items()})
    missing = [room for room in plan.rooms if room not in world.room_index]
    if missing:
        raise ValueError(f"scenario {plan.name!r} scripts rooms {missing} its world lacks")
    naming = Naming(world.room_ids, f"{plan.name}-{seed}-", f"c{seed:x}-", sources)
    state = _Engine(plan, world, seed, scale, start_ms, duration)
    for second in range(duration):
        event_ms = start_ms + second * 1000
        columns = state.step(second, event_ms)
        due = with_metrics and second % metrics_interval_s == 0
        samples = state.metric_samples(second, event_ms) if due else []
        yield Tick(event_ms, columns, samples, naming)


class _Engine:
    def __init__(self, plan: Scenario, world: World, seed: int, scale: float, start_ms: int, duration_s: int):
        self.plan, self.world, self.scale, self.start_ms = plan, world, scale, start_ms
        self.rng = np.random.default_rng(seed)
        self.weight = world.weight
        self.heavy = np.zeros(len(world.room_ids), dtype=bool) if world.weight is None else world.weight > 1.0
        self.metric_rng = self.rng if world.weight is None else np.random.default_rng([seed, 11])
        self.selectors = [CompiledSelector(effect, world) for effect in plan.effects]
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
        self.pool = empty_pool()
        self.next_uid = 0
        self.next_seq = 0
        self.intensity = np.zeros(len(plan.effects))
        self.before = np.zeros(len(plan.effects))
        self.join_attempts: np.ndarray = np.zeros(len(world.room_ids))
        self.base_mix = np.array(list(BASE_ERROR_MIX.values()))
        # Each silence's last second, per second it covers (backfilled reports go out after it).
        self.silence_end: dict[int, np.ndarray] = {}
        seconds = np.arange(duration_s)
        for index, effect in enumerate(plan.effects):
            if effect.silence and effect.backfill:
                ends = np.full(duration_s, -1, dtype=np.int64)
                for first, last in runs(np.asarray(curve_at(effect.intensity, seconds)) > 0):
                    ends[first:last + 1] = last
                self.silence_end[index] = ends
        # Start with the rooms already at their audience, silently: a run
        # must not open with every listener of the world joining at once.
        self.pool = self.new_listeners(np.round(self.targets(0, start_ms)).astype(np.int64))

    def targets(self, second: int, event_ms: int) -> np.ndarray:
        """Simulated clients each room should have now (listeners / weight)."""
        world = self.world
        audience = world.base_audience * rhythm(event_ms, world.cluster_offsets_h)
        for index, spec in self.special:
            audience[index] = spec.audience_at(second)
        scaled: np.ndarray = audience * self.scale
        return scaled if self.weight is None else scaled / self.weight

    def step(self, second: int, event_ms: int) -> ReportColumns:
        rng, n_rooms = self.rng, len(self.world.room_ids)
        self.before = self.intensity
        self.intensity = np.array([effect.intensity_at(second) for effect in self.plan.effects])
        target = self.targets(second, event_ms)
        pool = self.pool
        counts = np.bincount(pool.room, minlength=n_rooms).astype(np.float64)

        # Leaves: session churn, rooms shrinking towards their audience, closed rooms.
        surplus = np.clip((counts - target) / np.maximum(counts, 1.0) * 0.1, 0.0, 1.0)
        # A client standing for many people is a seat: their churn is drawn per person (``churn``).
        session = 1.0 / MEAN_SESSION_S if self.weight is None else np.where(self.heavy, 0.0, 1.0 / MEAN_SESSION_S)
        p_leave = np.where(target < 0.5, 1.0, session + surplus)
        leaving = rng.random(pool.uid.shape[0]) < p_leave[pool.room]
        leavers = pool.take(leaving)
        pool = pool.take(~leaving)

        # Joins: waiting clients try, some fail (and stay waiting).
        deficit = np.maximum(0.0, target - np.bincount(pool.room, minlength=n_rooms))
        attempts: np.ndarray = rng.poisson(deficit * JOIN_RETRY_PER_S)
        self.join_attempts = attempts.astype(np.float64)
        newcomers = self.new_listeners(attempts)
        p_fail = np.full(newcomers.uid.shape[0], BASE_JOIN_FAILURE)
        failing_origin = np.full(newcomers.uid.shape[0], -1, dtype=np.int64)
        for index, effect, selector, level in self.active():
            if effect.join_failure:
                touched = selector.mask(newcomers)
                p_fail += effect.join_failure * level * touched
                failing_origin = np.where(touched & (failing_origin < 0), index, failing_origin)
        failed = rng.random(newcomers.uid.shape[0]) < np.minimum(p_fail, 0.95)
        people: list[Part] = []
        if self.weight is not None:
            # Seats of many people always fill; their people's joins fail one by one (``churn``).
            failed &= ~self.heavy[newcomers.room]
            people = churn(rng, pool, self.weight, deficit, list(self.active()))
        joined, rejected = newcomers.take(~failed), newcomers.take(failed)

        beats, beat_weight = self.heartbeats(pool, second)
        beating = pool.take(beats)
        error_parts = self.errors(pool)
        self.pool = pool.extend(joined)

        parts = [
            Part(beating, HEARTBEAT, np.full(beating.uid.shape[0], -1), weight=beat_weight),
            Part(joined, JOIN, np.full(joined.uid.shape[0], -1)),
            Part(leavers, LEAVE, np.full(leavers.uid.shape[0], -1)),
            Part(rejected, ERROR, np.full(rejected.uid.shape[0], JOIN_FAILED), origin=failing_origin[failed]),
            *people,
            *repeated(error_parts, list(self.active()), rng),
        ]
        if self.intensity.any() or self.before.any():
            parts = silenced(parts, pool, self.plan.effects, self.selectors, self.intensity, self.before, rng,
                             lambda index: self.start_ms + (int(self.silence_end[index][second]) + 1) * 1000)
        return self.assemble(parts, event_ms)

    def heartbeats(self, pool: Pool, second: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Which listeners heartbeat this second, and with what weight (None: their room's).

        A listener heartbeats every 30 s, at its phase. A seat of w people
        (weight > 1) heartbeats every 10 s with weight w / 3: its people's
        heartbeats are spread over the 30 s, so every 10-s window counts a
        third of them. At its own 30-s phase a room's few seats of one slice
        (a version, a region) would all fall into some windows and none into
        others, and the slice's listener count would swing from window to
        window while its errors, drawn per person, do not.
        """
        if self.weight is None:
            return pool.phase == second % HEARTBEAT_PERIOD_S, None
        seat = self.heavy[pool.room]
        beats = np.where(seat, pool.phase % SEAT_BEAT_S == second % SEAT_BEAT_S,
                         pool.phase == second % HEARTBEAT_PERIOD_S)
        per_beat = self.weight[pool.room] / np.where(seat, HEARTBEAT_PERIOD_S / SEAT_BEAT_S, 1.0)
        return beats, per_beat[beats]

    def active(self) -> Iterator[Active]:
        for index, (effect, selector, level) in enumerate(zip(self.plan.effects, self.selectors, self.intensity,
                                                              strict=True)):
            if level > 0:
                yield index, effect, selector, float(level)

    def new_listeners(self, attempts: np.ndarray) -> Pool:
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
        if self.weight is not None:
            # A client standing for many listeners: the phases of a room's few hundred clients are spread
            # evenly, as a big room's listeners are, not clumped by chance into some windows.
            phase = np.where(self.weight[room] > 1.0, uid % HEARTBEAT_PERIOD_S, phase)
        return Pool(uid, room, platform, version, region.astype(np.int64), phase)

    def errors(self, pool: Pool) -> list[Part]:
        """The background errors plus every active effect's."""
        if self.weight is not None:
            return weighted_errors(self.rng, pool, self.weight, list(self.active()), self.base_mix, self.spammer)
        rng = self.rng
        size = pool.uid.shape[0]
        picks: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        codes: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        origins: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        if size:
            n_base = rng.poisson(size * BASE_ERROR_RATE)
            picks.append(rng.integers(0, size, size=n_base))
            codes.append(rng.choice(len(ERROR_CODES), size=n_base, p=self.base_mix))
            origins.append(np.full(n_base, -1, dtype=np.int64))
        spam: list[Part] = []
        for index, effect, selector, level in self.active():
            if effect.spam_per_s:
                spam.append(self.spammer((index, effect, selector, level)))
                continue
            chosen = np.flatnonzero(selector.mask(pool))
            if not chosen.shape[0]:
                continue
            for code, rate in effect.error_rates.items():
                k = rng.poisson(chosen.shape[0] * rate * level)
                picks.append(chosen[rng.integers(0, chosen.shape[0], size=k)])
                codes.append(np.full(k, ERROR_CODES.index(code)))
                origins.append(np.full(k, index, dtype=np.int64))
        rows = np.concatenate(picks)
        return [Part(pool.take(rows), ERROR, np.concatenate(codes), origin=np.concatenate(origins)), *spam]

    def spammer(self, active: Active) -> Part:
        """One misbehaving install repeating one error in the effect's room, under ``spam_ids`` ids."""
        index, effect, selector, level = active
        n = int(self.rng.poisson(effect.spam_per_s * level))
        room = int(selector.rooms[0]) if selector.rooms.size else 0
        ones = np.ones(n, dtype=np.int64)
        uid = ones * SPAMMER_CLIENTS
        if effect.spam_ids > 1:
            uid = uid + self.rng.integers(0, effect.spam_ids, size=n)
        who = Pool(uid, ones * room, ones * PLATFORMS.index("android"), ones * VERSION_NAMES.index("7.38.5"),
                   ones * int(self.world.room_cluster[room]), ones * 0)
        return Part(who, ERROR, ones * ERROR_CODES.index(effect.spam_code), origin=ones * index,
                     weight=None if self.weight is None else np.ones(n))

    def assemble(self, parts: list[Part], event_ms: int) -> ReportColumns:
        rng = self.rng
        pool = parts[0].pool
        for part in parts[1:]:
            pool = pool.extend(part.pool)
        kind = np.concatenate([np.full(part.pool.uid.shape[0], part.kind) for part in parts])
        code = np.concatenate([part.code for part in parts])
        n = kind.shape[0]
        ts = np.asarray(rng.integers(0, 1000, size=n), dtype=np.int64) + event_ms
        latency = np.asarray(rng.lognormal(0.0, 0.35, size=n)) * BASE_LATENCY_MS
        factor = np.ones(n)
        for _, effect, selector, level in self.active():
            if effect.latency_factor != 1.0:
                # An intensity above 1 (a burst of reports) makes more reports, not slower audio.
                factor *= 1.0 + (effect.latency_factor - 1.0) * min(level, 1.0) * selector.mask(pool)
        latency = np.where((kind == HEARTBEAT) | (kind == JOIN), np.round(latency * factor, 1), np.nan)
        if any(part.offset is not None for part in parts):
            ts = ts + self._column(parts, "offset", lambda part: np.zeros(part.pool.size, dtype=np.int64))
        order = np.argsort(ts, kind="stable")
        seq = np.arange(self.next_seq, self.next_seq + n, dtype=np.int64)
        self.next_seq += n
        client = self._column(parts, "client", lambda part: part.pool.uid)
        origin = self._column(parts, "origin", lambda part: np.full(part.pool.size, -1, dtype=np.int64))
        weight, hold = np.zeros(0), np.zeros(0, dtype=np.int64)
        if self.weight is not None:
            room_weight = self.weight
            weight = self._column(parts, "weight", lambda part: room_weight[part.pool.room])[order]
        if any(part.hold is not None for part in parts):
            hold = self._column(parts, "hold", lambda part: np.zeros(part.pool.size, dtype=np.int64))[order]
        return ReportColumns(
            ts=ts[order], kind=kind[order], code=code[order], client=client[order], room=pool.room[order],
            platform=pool.platform[order], version=pool.version[order], region=pool.region[order],
            latency=latency[order], seq=seq, weight=weight, origin=origin[order], hold_ms=hold,
        )

    @staticmethod
    def _column(parts: list[Part], name: str, default: object) -> np.ndarray:
        pieces = []
        for part in parts:
            value = getattr(part, name)
            pieces.append(value if value is not None else default(part))  # type: ignore[operator]
        return np.concatenate(pieces)

    def metric_samples(self, second: int, event_ms: int) -> list[MetricSample]:
        world, pool, scale = self.world, self.pool, self.scale
        n_clusters = len(REGIONS)
        per_client = None if self.weight is None else self.weight[pool.room]
        by_room = np.bincount(pool.room, weights=per_client, minlength=len(world.room_ids)) / scale
        joining = self.join_attempts if self.weight is None else self.join_attempts * self.weight
        hosted = np.bincount(world.room_cluster, weights=by_room, minlength=n_clusters)
        joining = np.bincount(world.room_cluster, weights=joining / scale, minlength=n_clusters)
        served = np.bincount(pool.region, weights=per_client, minlength=n_clusters) / scale
        strain = np.zeros((len(SERVICES), n_clusters))
        for _, effect, _, level in self.active():
            for item in effect.strain:
                row = SERVICES.index(item.service)
                cols = slice(None) if item.cluster == "*" else REGIONS.index(item.cluster)
                strain[row, cols] = np.maximum(strain[row, cols], item.level * min(level, 1.0))
        return metrics.samples(event_ms, hosted, joining, served, strain, self.metric_rng)
