"""What every family draws the same way: rooms, their world, failures, onsets, delays.

Sizes are full-size listeners, as the detectors see them: a room of N
listeners is at most ``Room.clients`` simulated clients (seats) each
standing for N / clients listeners (``World.weight``; errors, churn and
failed joins are drawn per person, see ``simulator.weighted``). Up to 300 listeners (1,000 for a room whose growth
or failure is the story) every simulated client is one listener.

A failure is labelled from its first failing report to its last. A drawn
failure is one whose failing clients, at full strength, report at least
three times the errors their whole slice normally does (below that it is
the slice's ordinary noise), with at least three people failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.schemas import ERROR_CODES

from ..arrival import ArrivalModel
from ..scenarios import Curve, Effect, Scenario, SpecialRoom
from ..world import BASE_ERROR_RATE, DEFAULT_START_MS, REGION_SHARE, REGION_UTC_OFFSET_H, REGIONS, World, rhythm

CLIENTS_PER_ROOM = 50
CLIENTS_PER_BIG_ROOM = 200
MIN_FAILING_PEOPLE = 3
# The failing clients' errors must be this many times the selection's normal error level.
INCIDENT_LIFT = 3.0
# Codes a failure shows as (join_failed comes from failed joins, Effect.join_failure).
FAILURE_CODES = tuple(code for code in ERROR_CODES if code != "join_failed")
BROKEN_CLOCK_FUTURE_MS = 4_070_908_800_000  # 2099-01-01
BROKEN_CLOCK_PAST_MS = 978_307_200_000  # 2001-01-01
YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True)
class Budget:
    """How long a draw's normal warm-up is, and how long the hours-long family runs.

    ``exact`` simulates every listener as a client of its own (weight 1):
    slow, and there to check that the weighted representation changes no figure.
    """

    warmup_s: int = 20 * 60
    long_s: int = 2 * 3600
    tail_s: int = 5 * 60
    exact: bool = False


FULL = Budget()
QUICK = Budget(warmup_s=10 * 60, long_s=30 * 60, tail_s=4 * 60)


@dataclass(frozen=True)
class Room:
    """A room of a draw: ``audience`` listeners (the daily rhythm moves it), or a scripted ``curve``."""

    id: str
    cluster: str
    audience: float
    curve: Curve | None = None
    home_share: float = 0.7
    clients: int = CLIENTS_PER_ROOM

    @property
    def peak(self) -> float:
        return max(y for _, y in self.curve) if self.curve else self.audience


@dataclass(frozen=True)
class Draw:
    """One seeded recording of a family: its scenario, world, arrival model and what was drawn."""

    family: str
    seed: int
    scenario: Scenario
    world: World
    arrival: ArrivalModel
    start_ms: int
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> int:
        return self.scenario.duration_s


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def failing_fraction(rng: np.random.Generator, people: float, rate_per_s: float,
                     low: float = 0.02, high: float = 0.6) -> float:
    """A share of ``people`` that fails, log-uniform in [low, high], raised to make an incident (see the module doc)."""
    drawn = log_uniform(rng, low, high)
    floor = max(MIN_FAILING_PEOPLE / max(people, 1.0), INCIDENT_LIFT * BASE_ERROR_RATE / rate_per_s)
    return float(min(1.0, max(drawn, floor)))


def error_rates(rng: np.random.Generator, rate_per_s: float) -> tuple[dict[str, float], str]:
    """The codes a failure shows: one, and often a second at a fraction of its rate."""
    primary = str(rng.choice(FAILURE_CODES))
    rates = {primary: rate_per_s}
    if rng.random() < 0.4:
        others = [code for code in FAILURE_CODES if code != primary]
        rates[str(rng.choice(others))] = rate_per_s * float(rng.uniform(0.2, 0.5))
    return rates, primary


def report_rate(rng: np.random.Generator) -> float:
    """Errors a failing client reports per second: from one a minute to one every 5 s."""
    return log_uniform(rng, 1 / 60, 1 / 5)


@dataclass(frozen=True)
class Onset:
    """How failing clients report over time: an intensity curve and repeats of each report."""

    pattern: str
    curve: Curve
    repeats: int = 0
    repeat_within_ms: int = 10_000


ONSETS = ("at_once", "spread", "ramp", "bursts", "retries")


def onset(rng: np.random.Generator, t0: int, duration_s: int, rate_per_s: float, pattern: str | None = None) -> Onset:
    """One of ``ONSETS``, over ``[t0, t0 + duration_s)``.

    at_once: every failing client hits the error in the same few seconds,
    then keeps reporting at a lower rate; spread: they fail at a steady rate;
    ramp: more of them fail over 1-3 minutes; bursts: on for 10-30 s, nearly
    off for 20-60 s; retries: a steady rate, each report retried 1-4 times.
    """
    name = pattern or str(rng.choice(ONSETS))
    end = t0 + duration_s
    if name == "at_once":
        burst = int(rng.integers(3, 12))
        # In the burst each failing client reports about once.
        peak = max(1.0, 1.0 / (rate_per_s * burst))
        after = float(rng.uniform(0.2, 1.0))
        curve: Curve = ((t0, 0.0), (t0 + 1, peak), (t0 + burst, peak), (t0 + burst + 1, after), (end, after), (end + 1, 0.0))
        return Onset(name, curve)
    if name == "ramp":
        ramp = int(rng.integers(60, 181))
        return Onset(name, ((t0, 0.0), (t0 + min(ramp, duration_s), 1.0), (end, 1.0), (end + 1, 0.0)))
    if name == "bursts":
        points: list[tuple[float, float]] = [(t0, 0.0)]
        t, floor = t0, 0.01  # between bursts the failing clients almost stop: one incident, not many
        while t < end:
            on, off = int(rng.integers(10, 31)), int(rng.integers(20, 61))
            points += [(t + 1, 1.0), (min(t + on, end), 1.0), (min(t + on + 1, end), floor)]
            t += on + off
            points.append((min(t, end), floor))
        points.append((end + 1, 0.0))
        return Onset(name, _increasing(points))
    ramp_in = int(rng.integers(1, 21))
    steady: Curve = ((t0, 0.0), (t0 + ramp_in, 1.0), (end, 1.0), (end + 1, 0.0))
    if name == "retries":
        return Onset(name, steady, repeats=int(rng.integers(1, 5)), repeat_within_ms=int(rng.integers(2_000, 10_001)))
    return Onset("spread", steady)


def _increasing(points: Sequence[tuple[float, float]]) -> Curve:
    """Drop points that do not move time forward (np.interp needs increasing x)."""
    out: list[tuple[float, float]] = []
    for x, y in points:
        if out and x <= out[-1][0]:
            out[-1] = (out[-1][0], y)
        else:
            out.append((x, y))
    return tuple(out)


def arrival_model(rng: np.random.Generator, duration_s: int, clocks: int = 0,
                  clock_window: tuple[int, int] | None = None) -> ArrivalModel:
    """Delays as apps and networks make them.

    ``clocks`` > 0 adds that many reports dated in 2099 and as many in 2001,
    arriving at seconds within ``clock_window`` (default: anywhere but the
    first and last minute).
    """
    batch = 0.0 if rng.random() < 0.4 else float(rng.uniform(1.0, 15.0))
    late = 0.0 if rng.random() < 0.5 else log_uniform(rng, 0.001, 0.05)
    low, high = clock_window or (60, duration_s - 60)
    broken: list[tuple[int, int]] = []
    for base in (BROKEN_CLOCK_FUTURE_MS, BROKEN_CLOCK_PAST_MS)[: 2 if clocks else 0]:
        for _ in range(clocks):
            broken.append((int(rng.integers(low, max(low + 1, high))), base + int(rng.integers(0, YEAR_MS))))
    return ArrivalModel(batch_s=batch, jitter_ms=float(rng.uniform(50.0, 800.0)), late_share=late,
                        late_s=(11.0, 180.0), broken_clocks=tuple(sorted(dict(broken).items())))


class Builder:
    """Collects a draw's rooms and effects; ``t0`` is when its incident (if any) starts."""

    def __init__(self, rng: np.random.Generator, budget: Budget):
        self.rng, self.budget = rng, budget
        self.t0 = budget.warmup_s + int(rng.integers(0, 300))
        self.rooms: list[Room] = []
        self.effects: list[Effect] = []
        self.params: dict[str, Any] = {}

    def cluster(self) -> str:
        return str(REGIONS[int(self.rng.choice(len(REGIONS), p=REGION_SHARE))])

    def room(self, audience: float, *, cluster: str | None = None, curve: Curve | None = None,
             clients: int = CLIENTS_PER_ROOM, prefix: str = "room") -> Room:
        room = Room(f"{prefix}-{len(self.rooms) + 1}", cluster or self.cluster(), float(audience), curve,
                    float(self.rng.uniform(0.5, 0.9)), clients)
        self.rooms.append(room)
        return room

    def subject(self, audience: float, **kwargs: Any) -> Room:
        """The room the story is about: a constant audience unless a curve is given, finer weights."""
        curve = kwargs.pop("curve", None) or ((0.0, float(audience)),)
        return self.room(audience, curve=curve, clients=kwargs.pop("clients", CLIENTS_PER_BIG_ROOM), **kwargs)

    def background(self, low: int, high: int, sizes: tuple[float, float] = (20.0, 20_000.0),
                   cluster: str | None = None) -> list[Room]:
        return [self.room(log_uniform(self.rng, *sizes), cluster=cluster)
                for _ in range(int(self.rng.integers(low, high + 1)))]

    def build(self, family: str, seed: int, duration_s: int, arrival: ArrivalModel | None = None) -> Draw:
        rng = self.rng
        # Any time of any day: the daily rhythm differs from draw to draw.
        start_ms = DEFAULT_START_MS + int(rng.integers(0, 24 * 60)) * 60_000
        arrival = arrival or arrival_model(rng, duration_s)
        world, special = make_world(self.rooms, start_ms, exact=self.budget.exact)
        scenario = Scenario(f"{family}-{seed}", family, duration_s=duration_s, rooms_default=len(self.rooms),
                            warmup_s=self.budget.warmup_s, rooms=special, effects=tuple(self.effects))
        params = {"rooms": len(self.rooms), "arrival": {"batch_s": round(arrival.batch_s, 2),
                                                       "jitter_ms": round(arrival.jitter_ms),
                                                       "late_share": round(arrival.late_share, 4)},
                  **self.params}
        return Draw(family, seed, scenario, world, arrival, start_ms, params)


def make_world(rooms: Sequence[Room], start_ms: int, exact: bool = False) -> tuple[World, dict[str, SpecialRoom]]:
    """The engine's world for ``rooms``: rhythm rooms as background, scripted ones as special rooms."""
    cluster = np.array([REGIONS.index(room.cluster) for room in rooms], dtype=np.int64)
    offsets = REGION_UTC_OFFSET_H[cluster]
    now = rhythm(start_ms, offsets)
    # A rhythm room's drawn audience is its audience at the start; the rhythm moves it by up to 1.4/0.6.
    base = np.array([0.0 if room.curve else room.audience / now[i] for i, room in enumerate(rooms)])
    peak = np.array([room.peak if room.curve else base[i] * 1.4 for i, room in enumerate(rooms)])
    clients = np.array([room.clients for room in rooms], dtype=np.float64)
    world = World(
        room_ids=tuple(room.id for room in rooms), room_cluster=cluster, base_audience=base,
        main_region_share=np.array([room.home_share for room in rooms]), cluster_offsets_h=offsets,
        weight=np.ones(len(rooms)) if exact else np.maximum(1.0, peak / clients),
    )
    special = {room.id: SpecialRoom(room.cluster, room.curve, room.home_share) for room in rooms if room.curve}
    return world, special
