"""Synthetic health windows with known incidents, for tests and benchmarks.

Real rooms are noisier than a binomial: the error rate itself wobbles from
window to window. Each code's rate is drawn per window from a gamma around its
base rate (``dispersion`` is the gamma shape; smaller is noisier), then the
distinct error clients from a binomial over the listeners.

>>> import numpy as np
>>> windows = room_windows(np.random.default_rng(0), [1000.0] * 3, key="room-1")
>>> [(w.window_start, w.listeners, w.error_clients) for w in windows]
[(1795323600000, 1000.0, 3.0), (1795323610000, 1000.0, 10.0), (1795323620000, 1000.0, 5.0)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.schemas import ERROR_CODES, RoomHealth, ServiceHealth

START_MS = 1_795_323_600_000  # 2026-11-22T05:00:00Z
WINDOW_MS = 10_000
BASE_RATIOS: dict[str, float] = {
    "details_not_available": 0.002, "crash": 0.0005, "join_failed": 0.001, "audio_dropout": 0.002,
    "audio_garbled": 0.0005, "logged_out": 0.0002, "timeout": 0.0005, "other": 0.0003,
}


@dataclass(frozen=True)
class Spike:
    """Extra error ratio ``ratio`` for ``code`` in windows ``[start, end)``."""

    start: int
    end: int
    code: str
    ratio: float


def room_windows(
    rng: np.random.Generator,
    listeners: Sequence[float],
    key: str = "room-1",
    spikes: Sequence[Spike] = (),
    base_ratios: Mapping[str, float] = BASE_RATIOS,
    dispersion: float = 30.0,
    spam_windows: range = range(0),
    start_ms: int = START_MS,
    region: str = "eu-west",
) -> list[RoomHealth]:
    windows = []
    for index, size in enumerate(listeners):
        count = float(round(size))
        clients_by_code: dict[str, float] = {}
        for code in ERROR_CODES:
            rate = base_ratios.get(code, 0.0) * rng.gamma(dispersion, 1.0 / dispersion)
            rate += sum(spike.ratio for spike in spikes if spike.code == code and spike.start <= index < spike.end)
            clients = float(rng.binomial(int(count), min(rate, 1.0))) if count > 0 else 0.0
            if clients:
                clients_by_code[code] = clients
        errors_by_code = {code: clients * 1.5 for code, clients in clients_by_code.items()}
        if index in spam_windows:  # one client sending hundreds of errors
            clients_by_code["other"] = clients_by_code.get("other", 0.0) + 1.0
            errors_by_code["other"] = errors_by_code.get("other", 0.0) + 500.0
        error_clients = sum(clients_by_code.values())
        errors = sum(errors_by_code.values())
        windows.append(RoomHealth(
            key=key, window_start=start_ms + index * WINDOW_MS, window_end=start_ms + (index + 1) * WINDOW_MS,
            listeners=count, reports=count + errors, errors=errors, error_ratio=errors / count if count else 0.0,
            errors_by_code=errors_by_code, error_clients=error_clients, error_clients_by_code=clients_by_code,
            region=region,
        ))
    return windows


def service_windows(
    rng: np.random.Generator,
    count: int,
    key: str = "audio-edge",
    incident: range = range(0),
    start_ms: int = START_MS,
) -> list[ServiceHealth]:
    """A service whose CPU, latency, error rate and connections move together; broken in ``incident``."""
    windows = []
    for index in range(count):
        load = 1.0 + 0.2 * np.sin(index / 60.0)
        cpu = 0.35 * load + rng.normal(0, 0.03)
        latency = 60 + 120 * cpu + rng.normal(0, 4)
        errors = float(rng.poisson(3 * load))
        if index in incident:
            latency, errors, cpu = latency * 6, errors + 120, min(cpu * 2.2, 1.0)
        metrics = {"cpu": float(cpu), "latency_p99_ms": float(latency), "errors_per_s": errors,
                   "connections": float(20_000 * load + rng.normal(0, 300))}
        windows.append(ServiceHealth(key=key, cluster="eu-1", window_start=start_ms + index * WINDOW_MS,
                                     window_end=start_ms + (index + 1) * WINDOW_MS, samples=40, hosts=4,
                                     metrics=metrics))
    return windows
