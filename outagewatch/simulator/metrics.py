"""Server metrics of the simulated services, per cluster and host.

Each service in each cluster has a few hosts. Load is the full-size number
of listeners it serves; ``strain`` (0..1, from a scenario's effects) is what
an overload or a failure adds on top: CPU pinned, p99 latency up by an order
of magnitude, a fifth of requests failing.

>>> import numpy as np
>>> load = np.array([50_000.0, 20_000, 30_000, 10_000, 5_000])
>>> calm = samples(1795392000000, load, load * 0, load, np.zeros((3, 5)), np.random.default_rng(0))
>>> hot = samples(1795392000000, load, load * 0, load, np.ones((3, 5)), np.random.default_rng(0))
>>> len(calm), sorted({s.name for s in calm})
(180, ['connections', 'cpu_utilization', 'error_rate', 'latency_p99_ms'])
>>> def mean(xs, name): return sum(s.value for s in xs if s.name == name) / 45
>>> mean(hot, "error_rate") > 50 * mean(calm, "error_rate"), mean(hot, "latency_p99_ms") > 5 * mean(calm, "latency_p99_ms")
(True, True)
"""

from __future__ import annotations

import numpy as np

from core.schemas import MetricSample

from .world import HOSTS_PER_SERVICE, REGIONS, SERVICES

# Full-size listeners one cluster's service handles at 100% utilisation.
CAPACITY = {"room-api": 800_000.0, "audio-edge": 1_000_000.0, "auth": 1_500_000.0}
BASE_P99_MS = {"room-api": 120.0, "audio-edge": 60.0, "auth": 90.0}
# A join costs the room-api and auth about as much as 30 listeners' upkeep.
JOIN_COST = 30.0


def samples(
    event_ms: int,
    hosted: np.ndarray,
    joining: np.ndarray,
    served: np.ndarray,
    strain: np.ndarray,
    rng: np.random.Generator,
) -> list[MetricSample]:
    """Samples at ``event_ms``: per cluster listeners of rooms hosted there
    (``hosted``), join attempts per second for those rooms (``joining``),
    listeners whose edge is there (``served``); ``strain[service, cluster]``."""
    load = {
        "room-api": hosted + JOIN_COST * joining,
        "audio-edge": served,
        "auth": served + JOIN_COST * joining,
    }
    out: list[MetricSample] = []
    for row, service in enumerate(SERVICES):
        for cluster_index, cluster in enumerate(REGIONS):
            util = float(min(load[service][cluster_index] / CAPACITY[service], 1.5))
            level = float(strain[row, cluster_index])
            connections = load[service][cluster_index] / HOSTS_PER_SERVICE
            noise = rng.normal(0.0, 1.0, size=(HOSTS_PER_SERVICE, 4))
            for host_number in range(HOSTS_PER_SERVICE):
                n = noise[host_number]
                values = {
                    "cpu_utilization": min(1.0, max(0.0, 0.12 + 0.55 * min(util, 1.0) + 0.3 * level + 0.02 * n[0])),
                    "latency_p99_ms": BASE_P99_MS[service] * (1.0 + 0.5 * util + 8.0 * level) * float(np.exp(0.08 * n[1])),
                    "error_rate": (0.002 + 0.25 * level) * float(np.exp(0.2 * n[2])),
                    "connections": max(0.0, connections * (1.0 + 0.03 * n[3])),
                }
                host = f"{service}-{cluster}-{host_number + 1}"
                for name, value in values.items():
                    out.append(MetricSample(ts=event_ms, service=service, name=name, value=round(float(value), 4),
                                            host=host, cluster=cluster, labels={"region": cluster}))
    return out
