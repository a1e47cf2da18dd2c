"""Silent failures: what fails stops reporting instead of reporting errors.

Why these ranges: a crash that kills the app (with or without a last crash
report) takes 20% to all of a room's listeners, spread over up to a minute,
for 1 to 10 minutes, after which they reopen it (a join). A room server that
drops its connections collapses the room's heartbeats to a fifth or less with
no ``leave`` reports. A region's network, a platform's or version's
reporting path, or the whole ingest can go dark for 1 to 5 minutes; half the
time the clients' retry queues deliver the queued errors, joins and leaves
(not the heartbeats) once it is back.
"""

from __future__ import annotations

import numpy as np

from ..scenarios import Effect, Label, Selector
from ..world import REGIONS
from .common import Budget, Builder, Draw, log_uniform
from .loud import BIG_PLATFORMS, BIG_VERSIONS

HEARTBEAT_LOSS = "heartbeat_loss"
SILENCE = "silence"
SILENT_KINDS = (HEARTBEAT_LOSS, SILENCE)


def _quiet(b: Builder, selector: Selector, label: Label, *, ramp_s: int, duration_s: int, final_code: str = "",
           rejoin: bool = False, backfill: bool = False) -> int:
    t0 = b.t0
    end = t0 + max(ramp_s, 1) + duration_s
    curve = ((t0, 0.0), (t0 + max(ramp_s, 1), 1.0), (end, 1.0), (end + 1, 0.0))
    b.effects.append(Effect(f"{label.scope} {label.key} goes quiet", selector, curve, silence=True,
                            final_code=final_code, rejoin=rejoin, backfill=backfill, labels=(label,)))
    b.params["silence"] = {"key": label.key, "fraction": round(selector.fraction, 4), "ramp_s": ramp_s,
                           "duration_s": duration_s, "final_code": final_code, "rejoin": rejoin, "backfill": backfill}
    return end


def crash_stop(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """Clients crash and stop sending; half the time each sends a crash report first."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 20.0, 1_000_000.0))
    share = min(1.0, max(log_uniform(rng, 0.2, 1.0), 3.0 / room.audience))
    end = _quiet(b, Selector(rooms=(room.id,), fraction=share, salt=1), Label("room", room.id, HEARTBEAT_LOSS),
                 ramp_s=int(rng.integers(1, 61)), duration_s=int(rng.integers(60, 601)),
                 final_code="crash" if rng.random() < 0.5 else "", rejoin=True)
    return b.build("crash_stop", seed, end + budget.tail_s)


def heartbeat_collapse(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A room's heartbeats fall to a fifth or less, without leave reports."""
    b = Builder(rng, budget)
    b.background(6, 10)
    room = b.subject(log_uniform(rng, 20.0, 1_000_000.0))
    end = _quiet(b, Selector(rooms=(room.id,), fraction=float(rng.uniform(0.8, 1.0)), salt=1),
                 Label("room", room.id, HEARTBEAT_LOSS), ramp_s=int(rng.integers(1, 31)),
                 duration_s=int(rng.integers(60, 601)), rejoin=bool(rng.random() < 0.5))
    return b.build("heartbeat_collapse", seed, end + budget.tail_s)


def slice_dark(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """A region's, a platform's or an app version's reports stop arriving for 1-5 minutes."""
    b = Builder(rng, budget)
    b.background(12, 25, sizes=(20.0, 50_000.0))
    pick = rng.random()
    if pick < 0.5:
        region = str(rng.choice(REGIONS))
        selector, label = Selector(region=region), Label("cluster", region, SILENCE)
    elif pick < 0.75:
        platform = str(rng.choice(BIG_PLATFORMS))
        selector, label = Selector(platform=platform), Label("platform", platform, SILENCE)
    else:
        version = str(rng.choice(BIG_VERSIONS))
        selector, label = Selector(app_version=version), Label("app_version", version, SILENCE)
    end = _quiet(b, selector, label, ramp_s=int(rng.integers(0, 11)), duration_s=int(rng.integers(60, 301)),
                 backfill=bool(rng.random() < 0.5))
    return b.build("slice_dark", seed, end + budget.tail_s)


def global_dark(rng: np.random.Generator, budget: Budget, seed: int) -> Draw:
    """Every report stops arriving for 1-5 minutes."""
    b = Builder(rng, budget)
    b.background(10, 25, sizes=(20.0, 50_000.0))
    end = _quiet(b, Selector(), Label("global", "all", SILENCE), ramp_s=int(rng.integers(0, 11)),
                 duration_s=int(rng.integers(60, 301)), backfill=bool(rng.random() < 0.5))
    return b.build("global_dark", seed, end + budget.tail_s)


SILENT = {"crash_stop": crash_stop, "heartbeat_collapse": heartbeat_collapse, "slice_dark": slice_dark,
          "global_dark": global_dark}
