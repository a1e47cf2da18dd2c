"""Benchmark: detector cost on the hot path, the ensemble per window, detect-csv rows/s.

Per-call figures are the best of ``repeats`` runs over synthetic inputs
(``outagewatch.simulator.synthetic``); each call is one ``score_one`` plus one ``learn_one``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.audience import Audience
from detectors.cusum import Cusum
from detectors.ratio import ErrorRatio
from detectors.registry import RoomDetectors
from detectors.server import ServerAnomaly
from detectors.volume import VolumeBaseline
from outagewatch.evaluate.detect_csv import GENERAL, detect_csv
from outagewatch.simulator.synthetic import room_windows, service_windows


def _best(run: Callable[[], int], repeats: int) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - started)
    return best, count


def _detector_loop(build: Callable[[], Any], inputs: list[tuple[Any, ...]]) -> Callable[[], int]:
    def run() -> int:
        detector = build()
        for x in inputs:
            detector.score_one(*x)
            detector.learn_one(*x)
        return len(inputs)
    return run


def run(settings: object = None, quick: bool = False, calls: int = 20_000, repeats: int = 3) -> list[dict[str, Any]]:
    if quick:
        calls, repeats = 2_000, 1
    rng = np.random.default_rng(0)
    counts = [float(c) for c in rng.poisson(40, calls)]
    cases: dict[str, tuple[Callable[[], Any], list[tuple[Any, ...]]]] = {
        "volume_baseline": (VolumeBaseline, [(c, 1_795_323_600_000 + 10_000 * i) for i, c in enumerate(counts)]),
        "error_ratio": (ErrorRatio, [(c, 4000.0) for c in counts]),
        "cusum": (Cusum, [(c,) for c in counts]),
        # listeners, joins, leaves: a room of ~120 people, a third heartbeating per window
        "audience": (Audience, [(c, 1.0, 1.0) for c in counts]),
        "server_anomaly": (ServerAnomaly, [(w.metrics,) for w in service_windows(rng, max(calls // 20, 100))]),
    }
    results = []
    for name, (build, inputs) in cases.items():
        seconds, done = _best(_detector_loop(build, inputs), repeats)
        results.append({"bench": "detectors", "detector": name, "calls": done,
                        "us_per_call": round(seconds / done * 1e6, 2)})

    windows = [w for room in range(20) for w in room_windows(rng, [5000.0] * (calls // 100), key=f"room-{room}")]

    def ensemble() -> int:
        registry = RoomDetectors()
        for window in windows:
            registry.observe(window)
        return len(windows)

    seconds, done = _best(ensemble, repeats)
    results.append({"bench": "detectors", "detector": "room_ensemble", "windows": done,
                    "us_per_window": round(seconds / done * 1e6, 1), "windows_per_s": round(done / seconds)})

    rows = 20_000 if not quick else 2_000
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.csv"
        source.write_text("timestamp,value\n" + "".join(f"{1_795_323_600 + 10 * i},{c:g}\n"
                                                        for i, c in enumerate(rng.poisson(40, rows))))
        seconds, done = _best(lambda: detect_csv(source, Path(tmp) / "out.csv", VolumeBaseline(**GENERAL.as_kwargs())), repeats)
    results.append({"bench": "detectors", "detector": "detect_csv", "rows": done, "seconds": round(seconds, 3),
                    "rows_per_s": round(done / seconds)})
    return results
