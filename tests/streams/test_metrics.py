"""Server-metric windows: a cluster's window holds only its own cluster's samples."""

from __future__ import annotations

from core.schemas import MetricSample
from streams import replay

T = 1_795_323_600_000


def sample(service: str, cluster: str, value: float, host_number: int = 1, ts: int = T) -> MetricSample:
    return MetricSample(ts=ts, service=service, name="error_rate", value=value,
                        host=f"{service}-{cluster}-{host_number}", cluster=cluster)


def test_a_service_failing_in_one_cluster_leaves_the_other_clusters_windows_normal() -> None:
    samples = [
        sample("room-api", "us-east", 0.002), sample("room-api", "us-east", 0.002, host_number=2),
        sample("room-api", "ap-south", 0.2), sample("auth", "us-east", 0.004), sample("auth", "ap-south", 0.006),
        sample("auth", "us-east", 0.0, ts=T + 30_000),  # closes the first window
    ]
    first = [w for w in replay.service_windows(samples) if w.window_start == T]
    by_key = {(w.scope, w.key): w for w in first}

    assert by_key[("cluster", "us-east")].metrics == {"error_rate": (0.002 + 0.002 + 0.004) / 3}
    assert by_key[("cluster", "us-east")].hosts == 3
    assert by_key[("cluster", "ap-south")].metrics == {"error_rate": (0.2 + 0.006) / 2}
    assert by_key[("service", "room-api")].metrics["error_rate"] == (0.002 + 0.002 + 0.2) / 3
    assert by_key[("service", "room-api")].cluster == ""  # it spans two clusters
    # ... so it carries each cluster's own means: ap-south's failure is not diluted there.
    assert by_key[("service", "room-api")].clusters == {"ap-south": {"error_rate": 0.2},
                                                         "us-east": {"error_rate": 0.002}}
    assert by_key[("cluster", "us-east")].clusters == {}


def test_a_service_seen_in_one_cluster_names_it() -> None:
    samples = [sample("auth", "eu-west", 0.01), sample("auth", "eu-west", 0.0, ts=T + 30_000)]
    first = [w for w in replay.service_windows(samples) if w.window_start == T]

    assert {(w.scope, w.key, w.cluster) for w in first} == {("service", "auth", "eu-west"), ("cluster", "eu-west", "eu-west")}
    assert all(w.clusters == {} for w in first)  # one cluster: its slice would be the whole
