"""Where a request comes from, over real HTTP: per-source limits, trusted proxies, the source stamp."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from collectors.ratelimit import RateLimiter
from collectors.sources import SourceConfigError, SourcePolicy, Sources
from core.config import Settings
from core.timeutil import ManualClock
from tests.collectors.helpers import BASE_TS, KEY, collector_settings, read_topic, running_collector, unique_prefix
from tests.collectors.helpers import post_from as post


def reports(prefix: str, count: int, first: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"report_id": f"{prefix}{first + i}", "ts": BASE_TS + i, "client_id": f"c{i}", "room_id": "room-1",
             "kind": "heartbeat", "platform": "ios", **extra} for i in range(count)]


def test_a_trusted_proxy_names_the_client_and_anyone_else_is_the_client() -> None:
    sources = Sources(SourcePolicy(trusted_proxies=("127.0.0.1", "10.0.0.0/8")), secret=b"s")
    assert sources.client_address("127.0.0.1", "203.0.113.7") == "203.0.113.7"
    assert sources.client_address("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.1.1") == "203.0.113.7"
    assert sources.client_address("127.0.0.1", "not an address") == "127.0.0.1"
    assert sources.client_address("192.0.2.9", "203.0.113.7") == "192.0.2.9"  # not a proxy: the header is the client's
    assert sources.network("2001:db8:1:2::5") == "2001:db8:1::/48"
    with pytest.raises(SourceConfigError, match="trusted_proxies entry 'lb-1'"):
        Sources(SourcePolicy(trusted_proxies=("lb-1",)))
    with pytest.raises(SourceConfigError, match="source_ipv4_prefix"):
        SourcePolicy(ipv4_prefix=40)


def test_the_bucket_table_is_bounded_and_its_size_at_the_bound_is_known() -> None:
    limiter = RateLimiter(1000.0, 10_000.0, ManualClock(0), max_buckets=100_000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(150_000):
        limiter.take(f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24", 1)
    used = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert len(limiter) == 100_000
    # The figure in docs/security.md: about 23 MB for 100,000 networks (~230 bytes each).
    assert 10e6 < used < 30e6, used


@pytest.mark.integration
def test_one_network_over_its_limit_gets_429_while_another_with_the_same_key_is_served(
        settings: Settings, topic_factory: Callable[..., str]) -> None:
    config = collector_settings(settings, topic_factory("per-source"), source_rate_per_second=1.0,
                                source_rate_burst=20.0)
    prefix = unique_prefix()
    with running_collector(config) as runner:
        status, payload, _ = post(runner.url, reports(prefix, 15), "127.0.0.1")
        assert status == 202 and payload["accepted"] == 15
        status, payload, headers = post(runner.url, reports(prefix, 15, first=100), "127.0.0.2")  # the same /24
        assert status == 429 and int(headers["Retry-After"]) >= 10
        assert payload["error"] == "your network 127.0.0.0/24 is over its rate of 1 reports/s"
        status, payload, _ = post(runner.url, reports(prefix, 15, first=200), "127.0.1.1")  # another network
        assert status == 202 and payload["accepted"] == 15
        metrics = _metrics(runner.url)
    assert 'outagewatch_collector_rate_limited_total{limit="source"} 1.0' in metrics
    assert "outagewatch_collector_source_buckets 2.0" in metrics


@pytest.mark.integration
def test_behind_a_trusted_proxy_the_forwarded_client_has_the_bucket(
        settings: Settings, topic_factory: Callable[..., str]) -> None:
    config = collector_settings(settings, topic_factory("proxy"), source_rate_per_second=1.0, source_rate_burst=10.0,
                                trusted_proxies=("127.0.0.1",))
    prefix = unique_prefix()
    with running_collector(config) as runner:
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        assert post(runner.url, reports(prefix, 10), "127.0.0.1", headers=forwarded)[0] == 202
        status, payload, _ = post(runner.url, reports(prefix, 5, first=50), "127.0.0.1", headers=forwarded)
        assert status == 429 and "203.0.113.0/24" in payload["error"]
        # The proxy's other clients are served; a peer that is no proxy cannot borrow their networks.
        assert post(runner.url, reports(prefix, 5, first=100), "127.0.0.1",
                    headers={"X-Forwarded-For": "198.51.100.4"})[0] == 202
        assert post(runner.url, reports(prefix, 10, first=200), "127.0.5.1", headers=forwarded)[0] == 202
        status, payload, _ = post(runner.url, reports(prefix, 5, first=300), "127.0.5.1",
                                  headers={"X-Forwarded-For": "192.0.2.1"})
        assert status == 429 and "127.0.5.0/24" in payload["error"]


@pytest.mark.integration
def test_reports_carry_the_collectors_source_and_weight_and_a_relay_keeps_its_own(
        settings: Settings, topic_factory: Callable[..., str], kafka_bootstrap: str) -> None:
    topic = topic_factory("stamp")
    config = collector_settings(settings, topic, api_keys=(f"app:{KEY}:reports", "edge:edge-secret:reports+relay"))
    prefix = unique_prefix()
    with running_collector(config) as runner:
        forged = reports(prefix, 3, source="trust-me", weight=1000000.0)
        assert post(runner.url, forged[:2], "127.0.0.1")[0] == 202
        assert post(runner.url, forged[2:], "127.0.9.1")[0] == 202
        relayed = reports(prefix, 2, first=10, source="edge-pop-7")
        relayed[1].pop("source")
        relayed[1]["weight"] = 4.0
        assert post(runner.url, relayed, "127.0.0.1", key="edge-secret")[0] == 202
    stored = {r.report_id: r for _, batch in read_topic(kafka_bootstrap, topic, 5) for r in batch.reports}
    mine = [stored[f"{prefix}{i}"] for i in range(3)]
    assert all(r.weight == 1.0 and r.source not in (None, "trust-me") for r in mine)
    assert mine[0].source == mine[1].source != mine[2].source  # one network, then another
    assert len(mine[0].source or "") == 12
    assert (stored[f"{prefix}10"].source, stored[f"{prefix}11"].source) == ("edge-pop-7", None)
    assert stored[f"{prefix}11"].weight == 4.0


def _metrics(url: str) -> str:
    import requests

    return requests.get(url + "/metrics", timeout=5).text
