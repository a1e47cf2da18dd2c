"""Negatives: what a platform sees every day and must not page for.

Why these ranges: rooms end (their listeners leave, all at once or over
three minutes) at every size; in the evening every room loses 30% to 70% of
its audience over 20 to 60 minutes; a room can grow 2 to 20 times in 2 to
10 minutes with nothing wrong; one install (or one script inventing up to a
thousand client ids from one network) can send 1 to 20 errors a second for
up to 20 minutes; tiny rooms of 3 to 50 listeners make noise; a few clients
have clocks set in 2099 or 2001; and most hours nothing happens.
"""

from __future__ import annotations

import numpy as np

from ..scenarios import Effect, Selector
from .common import FAILURE_CODES, Budget, Builder, Draw, arrival_model, log_uniform

QUIET_S = 20 * 60  # a negative's time after its warm-up


def room_ends(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room of 10-1M listeners ends: they leave (leave reports), at once or over up to 3 minutes."""
    b = Builder(rng, budget)
    b.background(6, 10)
    size = log_uniform(rng, 10.0, 1_000_000.0)
    over = 1 if rng.random() < 0.3 else int(rng.integers(30, 181))
    b.subject(size, curve=((0.0, size), (b.t0, size), (b.t0 + over, 0.0)))
    b.params["ends"] = {"people": round(size), "over_s": over}
    return b.build("room_ends", seed, b.t0 + over + 10 * 60)


def evening_decline(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """Every room loses 30-70% of its listeners (leaving, with leave reports) over 20-60 minutes."""
    b = Builder(rng, budget)
    drop, minutes = float(rng.uniform(0.3, 0.7)), int(rng.integers(20, 61))
    for _ in range(int(rng.integers(10, 21))):
        size = log_uniform(rng, 20.0, 50_000.0)
        keep = 1.0 - min(0.9, max(0.05, drop + float(rng.normal(0.0, 0.08))))
        b.room(size, curve=((0.0, size), (b.t0, size), (b.t0 + minutes * 60, size * keep)))
    b.params["decline"] = {"drop": round(drop, 3), "minutes": minutes}
    return b.build("evening_decline", seed, b.t0 + minutes * 60 + budget.tail_s)


def benign_surge(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room grows 2-20x in 2-10 minutes; its listeners err as often as ever."""
    b = Builder(rng, budget)
    b.background(6, 10)
    size = log_uniform(rng, 10.0, 50_000.0)
    peak = min(1_000_000.0, size * log_uniform(rng, 2.0, 20.0))
    over = int(rng.integers(120, 601))
    b.subject(peak, curve=((0.0, size), (b.t0, size), (b.t0 + over, peak)))
    b.params["surge"] = {"from": round(size), "to": round(peak), "over_s": over}
    return b.build("benign_surge", seed, b.t0 + over + 10 * 60)


def spammer(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """One install repeats an error 1-20 times a second; half the time under invented client ids."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 10.0, 100_000.0))
    per_s, minutes = log_uniform(rng, 1.0, 20.0), int(rng.integers(5, 21))
    ids = 1 if rng.random() < 0.5 else round(log_uniform(rng, 10.0, 1000.0))
    code = str(rng.choice(FAILURE_CODES))
    t0 = b.t0
    b.effects.append(Effect("one client spams errors", Selector(rooms=(room.id,)),
                            ((t0, 0.0), (t0 + 1, 1.0), (t0 + minutes * 60, 1.0), (t0 + minutes * 60 + 1, 0.0)),
                            spam_per_s=per_s, spam_code=code, spam_ids=ids))
    b.params["spam"] = {"room": room.id, "per_s": round(per_s, 2), "minutes": minutes, "ids": ids, "code": code}
    return b.build("spammer", seed, t0 + minutes * 60 + budget.tail_s)


def tiny_rooms(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """20-60 rooms of 3-50 listeners with their normal noise."""
    b = Builder(rng, budget)
    for _ in range(int(rng.integers(20, 61))):
        b.room(log_uniform(rng, 3.0, 50.0), prefix="tiny")
    b.background(3, 6)
    return b.build("tiny_rooms", seed, b.t0 + QUIET_S)


def broken_clocks(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """1-5 reports dated in 2099 and as many in 2001 arrive amid normal traffic."""
    b = Builder(rng, budget)
    b.background(10, 20)
    duration = b.t0 + QUIET_S
    clocks = int(rng.integers(1, 6))
    b.params["broken_clocks"] = clocks
    arrival = arrival_model(rng, duration, clocks=clocks, clock_window=(budget.warmup_s // 2, duration - 60))
    return b.build("broken_clocks", seed, duration, arrival)


def background(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """Hours of normal traffic."""
    b = Builder(rng, budget)
    b.background(15, 25)
    return b.build("background", seed, budget.long_s)


NEGATIVE = {"room_ends": room_ends, "evening_decline": evening_decline, "benign_surge": benign_surge,
            "spammer": spammer, "tiny_rooms": tiny_rooms, "broken_clocks": broken_clocks, "background": background}
