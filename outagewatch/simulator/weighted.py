"""Error reports of rooms whose simulated clients stand for many listeners.

In a weighted world (``World.weight``) a room of N listeners is N / w
simulated clients, each heartbeating with weight w, as the collector's
heartbeat sampling does. Errors are not sampled like that: per room, the
number of people erring in a second is drawn from the real rate over all N
listeners, and each report comes from one person of a simulated client
(``client + j * SUB_CLIENT``), with weight 1. Only where a room would send
more than ``cap_per_s`` error reports a second does one report stand for
several people: ``NORMAL_ERRORS_CAP_PER_S`` for the normal background (exact
Poisson noise up to rooms of ~300k listeners, at most 1.8 times it in a 1M
room), ``FAILURE_ERRORS_CAP_PER_S`` for a failure's errors, which are at
least three times the background and so far above any noise: a 1M-listener
room's outage costs a few reports a second to replay. The same draw makes a
weighted room's session churn (people leaving and others joining in their
place) and its failed joins, per person, at ``CHURN_CAP_PER_S``: the
simulated clients themselves stay, as seats, and join or leave only when the
room grows, shrinks or closes.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> uid, room = np.arange(300), np.repeat([0, 1], [100, 200])
>>> w = np.array([1.0, 5_000.0])  # room 0: 100 listeners; room 1: a million, as 200 clients
>>> seconds = [draw_errors(rng, uid, room, np.arange(300), w, 0.01, cap_per_s=30.0, code=3) for _ in range(100)]
>>> small = [float(d.weight[d.room == 0].sum()) for d in seconds]  # 1 person a second, each a report
>>> big = [float(d.weight[d.room == 1].sum()) for d in seconds]    # 10,000 people a second, in ~30 reports
>>> bool(0.8 < np.mean(small) < 1.2), max(float(d.weight[d.room == 0].max(initial=1.0)) for d in seconds)
(True, 1.0)
>>> bool(9_500 < np.mean(big) < 10_500), max(int((d.room == 1).sum()) for d in seconds) < 60
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.schemas import ERROR_CODES, KINDS

from .population import Active, Part, Pool
from .wire import SUB_CLIENT
from .world import BASE_ERROR_RATE, BASE_JOIN_FAILURE, MEAN_SESSION_S

NORMAL_ERRORS_CAP_PER_S = 100.0
FAILURE_ERRORS_CAP_PER_S = 10.0
CHURN_CAP_PER_S = 2.0
# As the engine: a waiting client tries to join every ~5 s.
JOIN_RETRY_PER_S = 0.2
JOIN, LEAVE, ERROR = (KINDS.index(kind) for kind in ("join", "leave", "error"))
JOIN_FAILED = ERROR_CODES.index("join_failed")


@dataclass(frozen=True)
class ErrorDraw:
    """Errors of one second: pool rows that sent them, code, client number, weight."""

    rows: np.ndarray
    room: np.ndarray
    code: np.ndarray
    client: np.ndarray
    weight: np.ndarray


def no_errors() -> ErrorDraw:
    none = np.zeros(0, dtype=np.int64)
    return ErrorDraw(none, none, none, none, np.zeros(0))


def draw_errors(rng: np.random.Generator, uid: np.ndarray, room: np.ndarray, candidates: np.ndarray,
                listener_weight: np.ndarray, rate_per_s: float | np.ndarray, cap_per_s: float,
                code: int | None = None, mix: np.ndarray | None = None,
                people: np.ndarray | None = None) -> ErrorDraw:
    """One second of reports at ``rate_per_s`` per listener among pool rows ``candidates``.

    ``rate_per_s`` is one rate, or one per room (indexed by room). ``code``
    is every report's code (-1: none, for joins and leaves), or the codes are
    drawn from ``mix`` (probabilities over ``ERROR_CODES``). ``people``: how
    many of each candidate's listeners report (``CompiledSelector.people``),
    each a person numbered below it; by default all its room's weight.
    """
    if not candidates.shape[0] or not np.any(np.asarray(rate_per_s) > 0):
        return no_errors()
    if people is not None:
        assert code is not None, "draw_errors with people needs a code (a mix is drawn per room only)"
        return _draw_people(rng, uid, room, candidates, people, listener_weight.shape[0], rate_per_s, cap_per_s,
                            code)
    n_rooms = listener_weight.shape[0]
    candidate_room = room[candidates]
    per_room = np.bincount(candidate_room, minlength=n_rooms)
    people_per_s = per_room * listener_weight * rate_per_s
    report_weight = np.maximum(1.0, people_per_s / cap_per_s)
    counts = rng.poisson(people_per_s / report_weight)
    total = int(counts.sum())
    if not total:
        return no_errors()
    by_room = candidates[np.argsort(candidate_room, kind="stable")]
    starts = np.cumsum(per_room) - per_room
    pick_room = np.repeat(np.arange(n_rooms), counts)
    rows = by_room[starts[pick_room] + (rng.random(total) * per_room[pick_room]).astype(np.int64)]
    person = (rng.random(total) * np.ceil(listener_weight[pick_room])).astype(np.int64)
    if code is not None:
        codes = np.full(total, code, dtype=np.int64)
    else:
        assert mix is not None, "draw_errors needs a code or a mix"
        codes = rng.choice(mix.shape[0], size=total, p=mix)
    return ErrorDraw(rows, pick_room, codes, uid[rows] + person * SUB_CLIENT, report_weight[pick_room])


def _draw_people(rng: np.random.Generator, uid: np.ndarray, room: np.ndarray, rows: np.ndarray, people: np.ndarray,
                 n_rooms: int, rate_per_s: float | np.ndarray, cap_per_s: float, code: int) -> ErrorDraw:
    """``draw_errors`` for rows of ``people`` reporting people each (the same ones: persons below that number)."""
    row_room = room[rows]
    rate = np.asarray(rate_per_s)
    per_row = people * (rate[row_room] if rate.ndim else rate)
    report_weight = np.maximum(1.0, np.bincount(row_room, weights=per_row, minlength=n_rooms) / cap_per_s)
    counts = rng.poisson(per_row / report_weight[row_room])
    picked = np.repeat(np.arange(rows.shape[0]), counts)
    if not picked.shape[0]:
        return no_errors()
    person = (rng.random(picked.shape[0]) * people[picked]).astype(np.int64)
    chosen = rows[picked]
    codes = np.full(picked.shape[0], code, dtype=np.int64)
    return ErrorDraw(chosen, row_room[picked], codes, uid[chosen] + person * SUB_CLIENT, report_weight[row_room[picked]])


def weighted_errors(rng: np.random.Generator, pool: Pool, weight: np.ndarray, active: list[Active],
                    base_mix: np.ndarray, spammer: Callable[[Active], Part]) -> list[Part]:
    """One second of the normal errors and every active effect's, per person, as parts (a spammer's its own)."""
    draws = [(-1, draw_errors(rng, pool.uid, pool.room, np.arange(pool.size), weight, BASE_ERROR_RATE,
                              NORMAL_ERRORS_CAP_PER_S, mix=base_mix))]
    spam: list[Part] = []
    for item in active:
        index, effect, selector, level = item
        if effect.spam_per_s:
            spam.append(spammer(item))
            continue
        chosen, people = selector.people(pool, weight[pool.room])
        for code, rate in effect.error_rates.items():
            draws.append((index, draw_errors(rng, pool.uid, pool.room, chosen, weight, rate * level,
                                             FAILURE_ERRORS_CAP_PER_S, code=ERROR_CODES.index(code), people=people)))
    parts = [Part(pool.take(draw.rows), ERROR, draw.code, origin=np.full(draw.rows.shape[0], index),
                  weight=draw.weight, client=draw.client) for index, draw in draws if draw.rows.shape[0]]
    return parts + spam


def churn(rng: np.random.Generator, pool: Pool, weight: np.ndarray, deficit: np.ndarray,
          active: list[Active]) -> list[Part]:
    """Per person, in rooms of seats (weight > 1): people leaving, others joining, joins failing.

    People join a room to replace those who leave (its session churn) and,
    while it grows, to fill its new seats (``deficit``, in simulated clients);
    each join fails with the base rate plus what the effects on the joiner's
    slice add. The seats' own joins (weight w) are the growth itself.
    """
    heavy = np.flatnonzero(weight[pool.room] > 1.0)
    if not heavy.shape[0]:
        return []
    seats = np.bincount(pool.room, minlength=weight.shape[0]).astype(np.float64)
    joining = 1.0 / MEAN_SESSION_S + deficit * JOIN_RETRY_PER_S / np.maximum(seats, 1.0)  # per seat, per second
    churning = 1.0 / MEAN_SESSION_S
    draws = [(JOIN, -1, draw_errors(rng, pool.uid, pool.room, heavy, weight, churning, CHURN_CAP_PER_S, code=-1)),
             (LEAVE, -1, draw_errors(rng, pool.uid, pool.room, heavy, weight, churning, CHURN_CAP_PER_S, code=-1)),
             (ERROR, -1, draw_errors(rng, pool.uid, pool.room, heavy, weight, joining * BASE_JOIN_FAILURE,
                                     FAILURE_ERRORS_CAP_PER_S, code=JOIN_FAILED))]
    for index, effect, selector, level in active:
        if effect.join_failure:
            # A joiner is in the failing share as often as a listener is (``CompiledSelector.people``).
            slice_ = heavy[selector.matching(pool.take(heavy))]
            draws.append((ERROR, index, draw_errors(rng, pool.uid, pool.room, slice_, weight,
                                                    joining * min(0.95, effect.join_failure * level) * selector.fraction,
                                                    FAILURE_ERRORS_CAP_PER_S, code=JOIN_FAILED)))
    return [Part(pool.take(draw.rows), kind, draw.code, origin=np.full(draw.rows.shape[0], origin),
                 weight=draw.weight, client=draw.client) for kind, origin, draw in draws if draw.rows.shape[0]]
