"""Pure reducer for one event-time window of server metrics of one service.

Same shape as ``streams.windows``: ``initialize``, ``add``, ``result`` and
``partials`` (the service's contribution to its cluster's window). A window
holds, per metric name, the sum and count of its samples (so means combine
exactly across services) and the distinct hosts that reported.

>>> from outagewatch.schemas import MetricSample
>>> state = initialize()
>>> for host, value in [("h1", 10.0), ("h2", 30.0), ("h1", 20.0)]:
...     state = add(state, MetricSample(ts=1_795_323_600_000, service="api", name="cpu", value=value,
...                                     host=host, cluster="eu"))
>>> health = result(state, "service", "api", 0, 10_000)
>>> health.metrics, health.samples, health.hosts, health.cluster
({'cpu': 20.0}, 3, 2, 'eu')
"""

from __future__ import annotations

import operator

import msgspec

from outagewatch.schemas import MetricSample, ServiceHealth


class MetricState(msgspec.Struct, kw_only=True):
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    hosts: list[str] = []
    cluster: str = ""
    late_samples: int = 0
    applied_offset: int = -1
    closed: bool = False


class MetricPartial(msgspec.Struct, kw_only=True):
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    hosts: list[str] = []


def initialize() -> MetricState:
    return MetricState()


def add(state: MetricState, sample: MetricSample) -> MetricState:
    state.sums[sample.name] = state.sums.get(sample.name, 0.0) + sample.value
    state.counts[sample.name] = state.counts.get(sample.name, 0) + 1
    if sample.host and sample.host not in state.hosts:
        state.hosts.append(sample.host)
    if sample.cluster and not state.cluster:
        state.cluster = sample.cluster
    return state


def add_late(state: MetricState, sample: MetricSample) -> MetricState:
    state.late_samples += 1
    return state


def partials(state: MetricState) -> dict[tuple[str, str], MetricPartial]:
    """The service window's contribution to its cluster's window (none without a cluster)."""
    if not state.cluster:
        return {}
    return {("cluster", state.cluster): MetricPartial(sums=dict(state.sums), counts=dict(state.counts),
                                                      hosts=list(state.hosts))}


def merge(into: MetricPartial, other: MetricPartial) -> MetricPartial:
    for name, value in other.sums.items():
        into.sums[name] = into.sums.get(name, 0.0) + value
    for name, count in other.counts.items():
        into.counts[name] = into.counts.get(name, 0) + count
    for host in other.hosts:
        if host not in into.hosts:
            into.hosts.append(host)
    return into


def result(state: MetricState, scope: str, key: str, window_start: int, window_end: int) -> ServiceHealth:
    part = MetricPartial(sums=state.sums, counts=state.counts, hosts=state.hosts)
    return health_of(part, scope, key, window_start, window_end, cluster=state.cluster)


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
        metrics={name: part.sums[name] / part.counts[name] for name in sorted(part.sums)},
    )


# What the generic engine (streams.engine.Reducer) needs besides the functions above.
Partial = MetricPartial
state_type = MetricState
scope = "service"


key_and_ts = operator.attrgetter("service", "ts")


def key_of(sample: MetricSample) -> str:
    return sample.service


def ts_of(sample: MetricSample) -> int:
    return sample.ts  # type: ignore[return-value]  # an int once decoded (schemas)
