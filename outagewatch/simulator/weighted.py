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

from dataclasses import dataclass

import numpy as np

from .wire import SUB_CLIENT

NORMAL_ERRORS_CAP_PER_S = 100.0
FAILURE_ERRORS_CAP_PER_S = 10.0
CHURN_CAP_PER_S = 2.0


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
                code: int | None = None, mix: np.ndarray | None = None) -> ErrorDraw:
    """One second of reports at ``rate_per_s`` per listener among pool rows ``candidates``.

    ``rate_per_s`` is one rate, or one per room (indexed by room). ``code``
    is every report's code (-1: none, for joins and leaves), or the codes are
    drawn from ``mix`` (probabilities over ``ERROR_CODES``).
    """
    if not candidates.shape[0] or not np.any(np.asarray(rate_per_s) > 0):
        return no_errors()
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
