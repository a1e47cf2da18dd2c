"""The pipeline's processes on a cluster: N collectors, N workers, N sinks, each with its own port.

Shared by `outagewatch stack up --topology cluster` (long-lived processes
with pid files) and the cluster benchmark and tests (children they kill and
restart).

>>> from core.config import Settings
>>> [(role.name, role.args[-1]) for role in pipeline_roles(Settings())]
... # doctest: +NORMALIZE_WHITESPACE
[('collector-1', '28080'), ('collector-2', '28081'), ('worker-1', '26066'), ('worker-2', '26067'),
 ('worker-3', '26068'), ('sink-1', '26167'), ('sink-2', '26168')]
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Settings


@dataclass(frozen=True)
class Role:
    """One process: ``outagewatch ARGS``; ``port`` is its HTTP port (collector API, worker web page), or 0."""

    name: str
    kind: str
    args: tuple[str, ...]
    port: int = 0


def collector_role(index: int, port: int) -> Role:
    # N collectors on one machine cannot all have OTLP's 4318: each takes a free port.
    return Role(f"collector-{index}", "collector", ("collect", "--otlp-port", "0", "--port", str(port)), port)


def worker_role(index: int, port: int) -> Role:
    return Role(f"worker-{index}", "worker", ("worker", "--web-port", str(port)), port)


def sink_role(index: int, port: int) -> Role:
    # Migrations ran once before the sinks start: two sinks migrating at once would race on ON CLUSTER DDL.
    return Role(f"sink-{index}", "sink", ("history", "sink", "--no-migrate", "--health-port", str(port)), port)


def pipeline_roles(settings: Settings, collector_base: int | None = None,
                   worker_base: int | None = None, sink_base: int | None = None) -> list[Role]:
    """Collectors, then workers, then sinks, as many as ``settings.cluster`` says."""
    c = settings.cluster
    collectors = collector_base if collector_base is not None else c.collector_base_port
    workers = worker_base if worker_base is not None else c.worker_web_base_port
    sinks = sink_base if sink_base is not None else c.sink_health_base_port
    return [
        *(collector_role(i + 1, collectors + i) for i in range(c.collectors)),
        *(worker_role(i + 1, workers + i) for i in range(c.workers)),
        *(sink_role(i + 1, sinks + i) for i in range(c.sinks)),
    ]
