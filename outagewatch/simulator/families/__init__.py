"""Randomised scenario families: seeded draws of recordings and their labels.

A family is a generator of one recording (a ``Draw``: scenario, world,
arrival model) whose parameters are drawn from ranges, not fixed: room
sizes, failing shares, codes, onsets, durations, delays. The same (family,
seed, budget) always gives the same draw. ``loud``, ``silent`` and
``negative`` say what each family is and why its ranges are what they are;
``simulator.recording`` turns a draw into reports in arrival order and
labels.

>>> sorted(FAMILIES)[:4]
['background', 'benign_surge', 'biggest_room', 'broken_clocks']
>>> first, again = draw("room_small", 3), draw("room_small", 3)
>>> first.params == again.params, first.params != draw("room_small", 4).params
(True, True)
>>> [e.labels[0].scope for e in draw("cluster_failure", 0).scenario.effects]
['cluster']
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .common import FULL, QUICK, Budget, Draw
from .loud import LOUD
from .negative import NEGATIVE
from .silent import SILENT, SILENT_KINDS

Kind = Literal["loud", "silent", "negative"]
Make = Callable[[np.random.Generator, Budget, int], Draw]


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    summary: str
    make: Make


def _families() -> dict[str, Family]:
    out: dict[str, Family] = {}
    for kind, table in (("loud", LOUD), ("silent", SILENT), ("negative", NEGATIVE)):
        for name, make in table.items():
            doc = (make.__doc__ or "").strip().splitlines()
            out[name] = Family(name, kind, doc[0] if doc else name.replace("_", " "), make)  # type: ignore[arg-type]
    return out


FAMILIES: dict[str, Family] = _families()


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def draw(name: str, seed: int, budget: Budget = FULL) -> Draw:
    """The draw ``seed`` of family ``name``."""
    family = get_family(name)
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    return family.make(rng, budget, seed)


__all__ = ["FAMILIES", "FULL", "QUICK", "SILENT_KINDS", "Budget", "Draw", "Family", "draw", "get_family"]
