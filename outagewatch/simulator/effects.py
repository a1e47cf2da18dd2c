"""What effects do to a tick's reports after they are drawn: repeats and silences.

``repeated`` adds, for each active effect with ``repeats``, that many more
copies of each of its error reports, from the same client, 1 s to
``repeat_within_ms`` later. ``silenced`` removes what silenced listeners
would send (or holds it until the silence ends, with ``backfill``; never
their heartbeats), and adds a silenced listener's last report
(``final_code``) and a returning one's join (``rejoin``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.schemas import ERROR_CODES, KINDS

from .population import Active, CompiledSelector, Part, Pool
from .scenarios import Effect

HEARTBEAT, JOIN, ERROR = (KINDS.index(kind) for kind in ("heartbeat", "join", "error"))
# A silenced client's queued reports go out over this long once it is heard again.
BACKFILL_SPREAD_MS = 30_000


def repeated(parts: list[Part], active: list[Active], rng: np.random.Generator) -> list[Part]:
    """``parts`` plus the repeats of each effect's errors, later, from the same client."""
    out = list(parts)
    for index, effect, _, _ in active:
        if not effect.repeats:
            continue
        for part in parts:
            mine = part.take(part.origin == index) if part.origin is not None else None
            if mine is None or not mine.pool.size:
                continue
            for _ in range(effect.repeats):
                again = mine.take(np.arange(mine.pool.size))
                again.client = mine.client if mine.client is not None else mine.pool.uid
                again.offset = rng.integers(1000, max(1001, effect.repeat_within_ms), size=mine.pool.size)
                out.append(again)
    return out


def silenced(parts: list[Part], pool: Pool, effects: Sequence[Effect], selectors: Sequence[CompiledSelector],
             now: np.ndarray, before: np.ndarray, rng: np.random.Generator,
             silence_ends_ms: Callable[[int], int]) -> list[Part]:
    """``parts`` without what silenced listeners send; their last and first words added.

    ``now``/``before`` are the effects' intensities this tick and the last;
    ``silence_ends_ms(effect index)`` is when the current silence of a
    backfilling effect ends.
    """
    out = parts
    for index, (effect, selector) in enumerate(zip(effects, selectors, strict=True)):
        level, was_level = float(now[index]), float(before[index])
        if not effect.silence or (level <= 0 and was_level <= 0):
            continue
        kept: list[Part] = []
        for part in out:
            quiet = selector.share_mask(part.pool, level) if level > 0 else np.zeros(part.pool.size, dtype=bool)
            if not quiet.any():
                kept.append(part)
                continue
            kept.append(part.take(~quiet))
            if effect.backfill and part.kind != HEARTBEAT:
                held = part.take(quiet)
                held.hold = silence_ends_ms(index) + rng.integers(0, BACKFILL_SPREAD_MS, size=held.pool.size)
                kept.append(held)
        out = kept
        was, is_now = selector.share_mask(pool, was_level), selector.share_mask(pool, level)
        if effect.final_code:
            going = pool.take(is_now & ~was)
            out.append(Part(going, ERROR, np.full(going.size, ERROR_CODES.index(effect.final_code)),
                            origin=np.full(going.size, index)))
        if effect.rejoin:
            back = pool.take(was & ~is_now)
            out.append(Part(back, JOIN, np.full(back.size, -1), origin=np.full(back.size, index)))
    return out


__all__ = ["BACKFILL_SPREAD_MS", "Active", "repeated", "silenced"]
