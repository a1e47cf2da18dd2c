"""Loud failures: failing clients report errors.

Why these ranges: a live-audio platform's rooms run from a handful of
listeners to a million (sizes log-uniform over the family's band; the three
room families together cover 10..1M evenly per decade). A failure touches 2%
to 60% of a room's listeners (one code, often with a second one, sometimes
failed joins too), each failing client reporting from once a minute to every
5 s, for 1 to 10 minutes, however the failure strikes: all at once, spread,
ramping up, in bursts, or with every report retried. Shared causes hit
several rooms, a cluster (the rooms it hosts), a region (its listeners,
whatever the room), one platform or app version, or everyone.
"""

from __future__ import annotations

import numpy as np

from core.schemas import PLATFORMS

from ..scenarios import Effect, Label, Selector, Strain
from ..world import APP_VERSIONS, REGIONS
from .common import (
    CLIENTS_PER_ROOM,
    FAILURE_CODES,
    Budget,
    Builder,
    Draw,
    Room,
    arrival_model,
    error_rates,
    failing_fraction,
    log_uniform,
    onset,
    report_rate,
)

# Versions of the platforms that carry most listeners (a bad release of one of them).
BIG_VERSIONS = tuple(version for platform, version, _ in APP_VERSIONS if platform in ("ios", "android", "web"))
BIG_PLATFORMS = ("ios", "android", "web")


def fail(b: Builder, selector: Selector, people: float, label: Label, *, start: int | None = None,
         duration: int | None = None, rates: dict[str, float] | None = None, name: str = "",
         strain: tuple[Strain, ...] = ()) -> int:
    """Add one loud failure of ``selector`` (``people`` listeners in it); returns when it ends."""
    rng = b.rng
    t0 = b.t0 if start is None else start
    if rates is None:
        rates, code = error_rates(rng, report_rate(rng))
        label = Label(label.scope, label.key, code)
    total = sum(rates.values())
    fraction = failing_fraction(rng, people, total)
    length = int(rng.integers(60, 601)) if duration is None else duration
    how = onset(rng, t0, length, total)
    join_failure = float(rng.uniform(0.1, 0.6)) if rng.random() < 0.3 else 0.0
    selected = Selector(selector.rooms, (), selector.cluster, selector.region, selector.platform,
                        selector.app_version, fraction=fraction, salt=len(b.effects) + 1)
    b.effects.append(Effect(
        name or f"{label.scope} {label.key} fails", selected, how.curve, error_rates=rates,
        join_failure=join_failure, latency_factor=float(rng.uniform(1.0, 4.0)), strain=strain, labels=(label,),
        repeats=how.repeats, repeat_within_ms=how.repeat_within_ms))
    b.params.setdefault("failures", []).append({
        "key": label.key, "people": round(people), "fraction": round(fraction, 4),
        "codes": {code: round(rate, 4) for code, rate in rates.items()}, "onset": how.pattern,
        "duration_s": length, "join_failure": round(join_failure, 3)})
    return t0 + length


def _one_room(rng: np.random.Generator, budget: Budget, family: str, seed: int, sizes: tuple[float, float]) -> Draw:
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, *sizes))
    end = fail(b, Selector(rooms=(room.id,)), room.audience, Label("room", room.id, ""))
    return b.build(family, seed, end + budget.tail_s)


def room_small(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room of 10-500 listeners fails (any code, onset, share, 1-10 minutes)."""
    return _one_room(rng, budget, "room_small", seed, (10.0, 500.0))


def room_medium(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room of 500-25k listeners fails (any code, onset, share, 1-10 minutes)."""
    return _one_room(rng, budget, "room_medium", seed, (500.0, 25_000.0))


def room_large(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room of 25k-1M listeners fails (any code, onset, share, 1-10 minutes)."""
    return _one_room(rng, budget, "room_large", seed, (25_000.0, 1_000_000.0))


def rooms_several(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """2-6 rooms fail together (one cause, one code), each from its own second, each its own fraction."""
    b = Builder(rng, budget)
    b.background(4, 8)
    rates, code = error_rates(rng, report_rate(rng))
    duration = int(rng.integers(60, 601))
    end = 0
    for _ in range(int(rng.integers(2, 7))):
        room = b.subject(log_uniform(rng, 10.0, 1_000_000.0), clients=CLIENTS_PER_ROOM)
        end = max(end, fail(b, Selector(rooms=(room.id,)), room.audience, Label("room", room.id, code),
                            start=b.t0 + int(rng.integers(0, 61)), duration=duration, rates=rates))
    return b.build("rooms_several", seed, end + budget.tail_s)


def _people(rooms: list[Room]) -> float:
    return sum(room.audience for room in rooms)


def cluster_failure(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """The rooms one cluster hosts fail (its room-api): every listener of them, wherever they are."""
    b = Builder(rng, budget)
    cluster = b.cluster()
    hosted = b.background(8, 30, sizes=(20.0, 50_000.0), cluster=cluster)
    b.background(4, 10)
    end = fail(b, Selector(cluster=cluster), _people(hosted), Label("cluster", cluster, ""),
               strain=(Strain("room-api", cluster, 1.0),))
    return b.build("cluster_failure", seed, end + budget.tail_s)


def region_failure(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """One region's listeners fail (its audio edge), in every room they are in."""
    b = Builder(rng, budget)
    rooms = b.background(12, 25, sizes=(20.0, 50_000.0))
    region = str(rng.choice(REGIONS))
    # Rooms hosted in the region draw most of their listeners from it; the rest take a region's share.
    people = sum(r.audience * (r.home_share if r.cluster == region else 0.1) for r in rooms)
    end = fail(b, Selector(region=region), people, Label("cluster", region, ""),
               strain=(Strain("audio-edge", region, 1.0),))
    return b.build("region_failure", seed, end + budget.tail_s)


def _release_rates(rng: np.random.Generator) -> dict[str, float]:
    """A bad release mostly crashes; else it shows as any failure."""
    rate = report_rate(rng)
    if rng.random() < 0.5:
        return {"crash": rate}
    return error_rates(rng, rate)[0]


def platform_failure(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """One platform's clients (ios, android or web) fail in every room, often crashing."""
    b = Builder(rng, budget)
    rooms = b.background(10, 20, sizes=(20.0, 50_000.0))
    platform = str(rng.choice(BIG_PLATFORMS))
    share = {"ios": 0.45, "android": 0.40, "web": 0.12}[platform]
    rates = _release_rates(rng)
    end = fail(b, Selector(platform=platform), _people(rooms) * share, Label("platform", platform, next(iter(rates))),
               rates=rates)
    return b.build("platform_failure", seed, end + budget.tail_s)


def version_failure(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """One app version's clients fail in every room (a bad release), often crashing."""
    b = Builder(rng, budget)
    rooms = b.background(10, 20, sizes=(20.0, 50_000.0))
    version = str(rng.choice(BIG_VERSIONS))
    platform, _, within = next(item for item in APP_VERSIONS if item[1] == version)
    share = {"ios": 0.45, "android": 0.40, "web": 0.12}[platform] * within
    rates = _release_rates(rng)
    end = fail(b, Selector(platform=platform, app_version=version), _people(rooms) * share,
               Label("app_version", version, next(iter(rates))), rates=rates)
    return b.build("version_failure", seed, end + budget.tail_s)


def global_failure(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """Everything at once: every room, every region, every version."""
    b = Builder(rng, budget)
    rooms = b.background(10, 25, sizes=(20.0, 50_000.0))
    end = fail(b, Selector(), _people(rooms), Label("global", "all", ""),
               strain=(Strain("room-api", "*", 1.0), Strain("auth", "*", 0.5)))
    return b.build("global_failure", seed, end + budget.tail_s)


def room_bad_clocks(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room fails after a few clients with broken clocks (2099, 2001) have reported."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 100.0, 100_000.0))
    end = fail(b, Selector(rooms=(room.id,)), room.audience, Label("room", room.id, ""))
    duration = end + budget.tail_s
    arrival = arrival_model(rng, duration, clocks=int(rng.integers(1, 4)), clock_window=(60, b.t0 - 60))
    return b.build("room_bad_clocks", seed, duration, arrival)


def slow_ramp(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room's failing share rises over 5-20 minutes, holds, then recovers."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 100.0, 1_000_000.0))
    return _ramp(rng, b, budget, "slow_ramp", seed, room, ramp_s=(300, 1200), fraction=(0.05, 0.6))


def biggest_room(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """The platform's biggest room (every other one is under 20k) degrades over 3-15 minutes."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 200_000.0, 1_000_000.0))
    return _ramp(rng, b, budget, "biggest_room", seed, room, ramp_s=(180, 900), fraction=(0.03, 0.3))


def _ramp(rng: np.random.Generator, b: Builder, budget: Budget, family: str, seed: int, room: Room,
          ramp_s: tuple[int, int], fraction: tuple[float, float]) -> Draw:
    rates, code = error_rates(rng, report_rate(rng))
    total = sum(rates.values())
    share = failing_fraction(rng, room.audience, total, *fraction)
    ramp, hold, recover = int(rng.integers(*ramp_s)), int(rng.integers(120, 301)), int(rng.integers(30, 121))
    t0 = b.t0
    curve = ((t0, 0.0), (t0 + ramp, 1.0), (t0 + ramp + hold, 1.0), (t0 + ramp + hold + recover, 0.0))
    b.effects.append(Effect(
        f"{room.id} degrades", Selector(rooms=(room.id,), fraction=share, salt=1), curve, error_rates=rates,
        latency_factor=float(rng.uniform(1.0, 3.0)), labels=(Label("room", room.id, code),)))
    b.params["failures"] = [{"key": room.id, "people": round(room.audience), "fraction": round(share, 4),
                             "codes": {c: round(r, 4) for c, r in rates.items()}, "ramp_s": ramp, "hold_s": hold}]
    return b.build(family, seed, t0 + ramp + hold + recover + budget.tail_s)


def mega_room(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A brand-new room grows at ~50k listeners a minute and overloads at a capacity on the way up."""
    b = Builder(rng, budget)
    b.background(6, 10)
    peak = log_uniform(rng, 200_000.0, 1_000_000.0)
    per_min = float(rng.uniform(40_000.0, 70_000.0))
    opens = b.t0
    full = opens + peak / per_min * 60.0
    room = b.subject(peak, curve=((opens, 0.0), (full, peak)))
    capacity = float(rng.uniform(0.4, 0.9))
    overload = int(opens + capacity * peak / per_min * 60.0)
    hold = int(rng.integers(180, 601))
    code = "details_not_available" if rng.random() < 0.6 else str(rng.choice(FAILURE_CODES))
    rate = report_rate(rng)
    rates = {code: rate, **({"timeout": rate * 0.4} if code != "timeout" else {})}
    total = sum(rates.values())
    share = failing_fraction(rng, capacity * peak, total, 0.1, 0.6)
    ramp = int(rng.integers(30, 121))
    curve = ((overload, 0.0), (overload + ramp, 1.0), (overload + ramp + hold, 1.0), (overload + ramp + hold + 1, 0.0))
    b.effects.append(Effect(
        f"{room.id} overloaded", Selector(rooms=(room.id,), fraction=share, salt=1), curve, error_rates=rates,
        join_failure=float(rng.uniform(0.3, 0.7)), latency_factor=float(rng.uniform(3.0, 6.0)),
        strain=(Strain("room-api", room.cluster, 1.0),), labels=(Label("room", room.id, code),)))
    b.params["failures"] = [{"key": room.id, "peak": round(peak), "per_min": round(per_min),
                             "overload_at": round(capacity * peak), "fraction": round(share, 4),
                             "codes": {c: round(r, 4) for c, r in rates.items()}, "hold_s": hold}]
    return b.build("mega_room", seed, overload + ramp + hold + budget.tail_s)


LOUD = {
    "room_small": room_small, "room_medium": room_medium, "room_large": room_large, "rooms_several": rooms_several,
    "cluster_failure": cluster_failure, "region_failure": region_failure, "platform_failure": platform_failure,
    "version_failure": version_failure, "global_failure": global_failure, "room_bad_clocks": room_bad_clocks,
    "slow_ramp": slow_ramp, "biggest_room": biggest_room, "mega_room": mega_room,
}
assert set(BIG_PLATFORMS) <= set(PLATFORMS)
