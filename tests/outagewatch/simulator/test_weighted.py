"""A weighted world counts like an exact one: listeners, errors, joins and leaves, and their noise."""

from __future__ import annotations

import numpy as np

from core.schemas import ERROR_CODES, KINDS
from outagewatch.simulator.engine import generate
from outagewatch.simulator.families.common import Room, make_world
from outagewatch.simulator.scenarios import Scenario
from outagewatch.simulator.wire import SUB_CLIENT
from outagewatch.simulator.world import BASE_ERROR_RATE, DEFAULT_START_MS

HEARTBEAT, JOIN, LEAVE, ERROR = (KINDS.index(k) for k in ("heartbeat", "join", "leave", "error"))
PEOPLE = 6_000.0
SECONDS = 1_800


def per_window(exact: bool, seed: int) -> dict[str, np.ndarray]:
    """Per 10-s window of one steady room: listeners, errors, failed joins, joins, leaves (weights summed)."""
    room = Room("r", "us-east", PEOPLE, curve=((0.0, PEOPLE),), clients=150)
    world, special = make_world([room], DEFAULT_START_MS, exact=exact)
    plan = Scenario("steady", "one steady room", duration_s=SECONDS, rooms=special)
    out = {name: np.zeros(SECONDS // 10) for name in ("listeners", "errors", "join_failed", "joins", "leaves")}
    people: dict[int, set[int]] = {}
    for second, tick in enumerate(generate(plan, seed, world=world, with_metrics=False)):
        c, w, window = tick.columns, tick.columns.weights(), second // 10
        out["listeners"][window] += w[c.kind == HEARTBEAT].sum()
        failed = (c.kind == ERROR) & (c.code == ERROR_CODES.index("join_failed"))
        out["errors"][window] += w[(c.kind == ERROR) & ~failed].sum()
        out["join_failed"][window] += w[failed].sum()
        out["joins"][window] += w[c.kind == JOIN].sum()
        out["leaves"][window] += w[c.kind == LEAVE].sum()
        people.setdefault(window, set()).update(c.client[(c.kind == ERROR) & ~failed].tolist())
    assert all(len(clients) <= out["errors"][window] for window, clients in people.items())
    return {name: values[6:] for name, values in out.items()}  # past the first minute


def test_a_weighted_room_counts_what_an_exact_one_counts() -> None:
    weighted, exact = per_window(exact=False, seed=1), per_window(exact=True, seed=1)
    # A heartbeat every 30 s: a 10-s window sees a third of the room.
    assert abs(weighted["listeners"].mean() - PEOPLE / 3) < 0.03 * PEOPLE / 3
    assert abs(exact["listeners"].mean() - PEOPLE / 3) < 0.03 * PEOPLE / 3
    normal = PEOPLE * 10 * BASE_ERROR_RATE
    for values in (weighted, exact):
        assert abs(values["errors"].mean() - normal) < 0.1 * normal
        # Errors are Poisson, weighted or not: variance about the mean.
        assert 0.7 < values["errors"].var() / values["errors"].mean() < 1.4
    for name in ("joins", "leaves", "join_failed"):
        w, x = weighted[name].mean(), exact[name].mean()
        assert abs(w - x) <= 0.25 * x + 0.2, f"{name}: weighted {w:.2f} a window, exact {x:.2f}"


def test_failed_joins_of_a_weighted_room_come_one_person_at_a_time() -> None:
    weighted = per_window(exact=False, seed=2)["join_failed"]
    # Per person, not in lumps of a client's weight (40 people here): a Poisson count.
    assert weighted.max() <= 6 and weighted.var() <= 1.6 * max(weighted.mean(), 0.05)


def test_sub_clients_are_people_of_their_simulated_client() -> None:
    room = Room("r", "us-east", 1_000_000.0, curve=((0.0, 1_000_000.0),), clients=150)
    world, special = make_world([room], DEFAULT_START_MS)
    plan = Scenario("big", "one big room", duration_s=20, rooms=special)
    clients = np.concatenate([t.columns.client[t.columns.kind == ERROR] for t in generate(plan, 0, world=world)])
    seats = clients % SUB_CLIENT
    assert clients.shape[0] > 2_000 and np.unique(clients).shape[0] > 0.95 * clients.shape[0]
    assert seats.max() < 200, "every erring person belongs to one of the room's simulated clients"
