"""Garbage-collector settings for the processes on the report path: collector, worker, history sink.

Every report becomes a few short-lived container objects on its way (a
decoded struct, a row tuple, a list slot). CPython starts a young-generation
collection every 700 net allocations, so a 500-report batch sets off
several, and each older-generation pass walks everything still alive: the
sink's pending rows, the worker's windows, the collector's dedup sets
(docs/benchmarks.md has what that costs). None of these objects can form a
cycle, so collecting less often frees nothing later that matters; it only
stops re-walking live data. Cycles still get collected, just every
``young_threshold`` allocations instead of every 700.

>>> import gc
>>> before = gc.get_threshold()
>>> for_throughput(young_threshold=50_000)[0]
50000
>>> gc.set_threshold(*before); gc.unfreeze()
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("outagewatch.gc")

YOUNG_THRESHOLD = 50_000


def for_throughput(young_threshold: int = YOUNG_THRESHOLD) -> tuple[int, int, int]:
    """Collect the young generation every ``young_threshold`` allocations, and move what start-up
    created (modules, settings, compiled schemas) out of every later collection. Returns the thresholds."""
    gc.collect()
    # Start-up objects live as long as the process: no collection should walk them again.
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    log.debug("gc thresholds %s, %d start-up objects frozen", gc.get_threshold(), gc.get_freeze_count())
    return gc.get_threshold()
