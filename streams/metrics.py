"""Pure reducer for one event-time window of server metrics of one service.

``ServiceMetrics`` has the shape of ``streams.windows.RoomWindows`` (a
``streams.engine.Reducer``): ``initialize``, ``add``, ``result`` and ``partials`` (the service's contribution to each cluster's window). A window
holds, per metric name, the sum and count of its samples (so means combine
exactly across services) and the distinct hosts that reported, for the
service as a whole and per cluster: a service runs in every cluster, and a
cluster's window must hold only that cluster's samples (a failing ap-south
room-api is not an incident of us-east).

>>> from core.schemas import MetricSample
>>> services = ServiceMetrics()
>>> state = services.initialize()
>>> for host, value in [("h1", 10.0), ("h2", 30.0), ("h1", 20.0)]:
...     state = services.add(state, MetricSample(ts=1_795_323_600_000, service="api", name="cpu", value=value,
...                                     host=host, cluster="eu"))
>>> health = services.result(state, "service", "api", 0, 10_000)
>>> health.metrics, health.samples, health.hosts, health.cluster
({'cpu': 20.0}, 3, 2, 'eu')
>>> state = services.add(state, MetricSample(ts=1_795_323_600_000, service="api", name="cpu", value=90.0, host="h3",
...                                          cluster="us"))
>>> services.result(state, "service", "api", 0, 10_000).cluster, {key: part.sums
...                                                               for key, part in services.partials(state).items()}
('', {('cluster', 'eu'): {'cpu': 60.0}, ('cluster', 'us'): {'cpu': 90.0}})
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import msgspec

from core.schemas import MetricSample, ServiceHealth
from streams.engine import Reducer


class MetricPartial(msgspec.Struct, kw_only=True):
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    hosts: list[str] = []


class MetricState(msgspec.Struct, kw_only=True):
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    hosts: list[str] = []
    clusters: dict[str, MetricPartial] = {}
    late_samples: int = 0
    applied_offset: int = -1
    closed: bool = False


def _add_to(part: MetricState | MetricPartial, sample: MetricSample) -> None:
    part.sums[sample.name] = part.sums.get(sample.name, 0.0) + sample.value
    part.counts[sample.name] = part.counts.get(sample.name, 0) + 1
    if sample.host and sample.host not in part.hosts:
        part.hosts.append(sample.host)


def _means(part: MetricPartial) -> dict[str, float]:
    return {name: part.sums[name] / part.counts[name] for name in sorted(part.sums)}


def health_of(part: MetricPartial, scope: str, key: str, window_start: int, window_end: int,
              cluster: str = "") -> ServiceHealth:
    return ServiceHealth(
        scope=scope,  # type: ignore[arg-type]
        key=key,
        cluster=cluster or (key if scope == "cluster" else ""),
        window_start=window_start,
        window_end=window_end,
        samples=sum(part.counts.values()),
        hosts=len(part.hosts),
        metrics=_means(part),
    )


class ServiceMetrics(Reducer[MetricSample, MetricState, MetricPartial]):
    """The reducer of a service's window of server metrics (``streams.engine.Reducer``)."""

    scope = "service"
    state_type = MetricState
    partial_type = MetricPartial
    format_version = 4
    key_and_ts = operator.attrgetter("service", "ts")

    def initialize(self) -> MetricState:
        return MetricState()

    def add_many(self, state: MetricState, samples: Sequence[MetricSample]) -> MetricState:
        for sample in samples:
            _add_to(state, sample)
            if sample.cluster:
                cluster = state.clusters.get(sample.cluster)
                if cluster is None:
                    cluster = state.clusters[sample.cluster] = MetricPartial(sums={}, counts={}, hosts=[])
                _add_to(cluster, sample)
        return state

    def add_late(self, state: MetricState, sample: MetricSample) -> MetricState:
        state.late_samples += 1
        return state

    def partials(self, state: MetricState) -> dict[tuple[str, str], MetricPartial]:
        """The service window's contribution to the window of each cluster it ran in (none without one)."""
        return {("cluster", name): MetricPartial(sums=dict(part.sums), counts=dict(part.counts), hosts=list(part.hosts))
                for name, part in sorted(state.clusters.items())}

    def merge(self, into: MetricPartial, other: MetricPartial) -> MetricPartial:
        for name, value in other.sums.items():
            into.sums[name] = into.sums.get(name, 0.0) + value
        for name, count in other.counts.items():
            into.counts[name] = into.counts.get(name, 0) + count
        for host in other.hosts:
            if host not in into.hosts:
                into.hosts.append(host)
        return into

    def result(self, state: MetricState, scope: str, key: str, window_start: int, window_end: int) -> ServiceHealth:
        """The service's window: its ``cluster`` when all its samples came from one, else each cluster's means.

        >>> services = ServiceMetrics()
        >>> state = services.initialize()
        >>> for cluster, value in [("eu", 0.01), ("eu", 0.03), ("us", 0.002)]:
        ...     state = services.add(state, MetricSample(ts=1_795_323_600_000, service="api", name="error_rate",
        ...                                              value=value, cluster=cluster))
        >>> health = services.result(state, "service", "api", 0, 10_000)
        >>> round(health.metrics["error_rate"], 4), health.clusters
        (0.014, {'eu': {'error_rate': 0.02}, 'us': {'error_rate': 0.002}})
        """
        part = MetricPartial(sums=state.sums, counts=state.counts, hosts=state.hosts)
        if len(state.clusters) == 1:
            return health_of(part, scope, key, window_start, window_end, cluster=next(iter(state.clusters)))
        health = health_of(part, scope, key, window_start, window_end)
        health.clusters = {name: _means(cluster) for name, cluster in sorted(state.clusters.items())}
        return health

    def scope_result(self, part: MetricPartial, scope: str, key: str, window_start: int,
                     window_end: int) -> ServiceHealth:
        """A cluster's window (its key is the cluster)."""
        return health_of(part, scope, key, window_start, window_end)


# Stateless: one instance serves every partition, the worker's and the replay's.
SERVICE_METRICS = ServiceMetrics()
