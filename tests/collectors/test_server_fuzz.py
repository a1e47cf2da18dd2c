"""Fuzzing POST /v1/reports: any body, any items; every answer is 2xx/4xx and the collector stays up."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.config import Settings
from tests.collectors.helpers import AUTH, KEY, collector_settings, report, running_collector

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(["heartbeat", "error", "join", "crash", "ios", "web", "2026-11-22T05:00:00Z", "x" * 65]),
    st.integers(0, 5_000_000_000_000),
)
items = st.one_of(
    json_values,
    st.builds(lambda base, changes: {**base, **changes},
              st.builds(report, st.integers(0, 10**6), st.sampled_from(["a", "b"]),
                        st.sampled_from(["heartbeat", "join", "leave", "error"])),
              st.dictionaries(st.sampled_from(["report_id", "ts", "client_id", "room_id", "kind", "platform",
                                               "error_code", "latency_ms", "weight", "region"]),
                              field_values, max_size=3)),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda xs: json.dumps({"reports": xs}).encode(), st.lists(items, max_size=20)),
    st.builds(lambda xs: b"\n".join(json.dumps(x).encode() for x in xs), st.lists(items, max_size=20)),
    json_values.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(["application/json", "application/x-ndjson", "text/plain", "",
                                 "application/json; charset=utf-8"])


def test_every_answer_is_2xx_or_4xx_and_the_collector_stays_up(
        settings: Settings, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory("fuzz", partitions=1)
    with running_collector(collector_settings(settings, topic, max_batch_items=15)) as runner:
        session = requests.Session()

        @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=bodies, content_type=content_types, gzip_header=st.booleans())
        def check(body: bytes, content_type: str, gzip_header: bool) -> None:
            headers: dict[str, Any] = {**AUTH, "Content-Type": content_type}
            if gzip_header:
                headers["Content-Encoding"] = "gzip"
            answer = session.post(runner.url + "/v1/reports", data=body, headers=headers, timeout=30)
            assert 200 <= answer.status_code < 500, (answer.status_code, answer.text)
            if answer.status_code == 202:
                payload = answer.json()
                assert set(payload) >= {"accepted", "rejected", "errors"}
            else:
                assert answer.json()["error"]

        check()
        assert session.get(runner.url + "/healthz", timeout=5).status_code == 200


def test_a_seeded_fuzz_campaign_gets_no_5xx_and_leaves_the_collector_serving(
        settings: Settings, topic_factory: Callable[..., str]) -> None:
    """The short version of `outagewatch bench fuzz`: every family of generated and mutated body, real HTTP."""
    from outagewatch.bench.fuzz import campaign

    topic = topic_factory("fuzz-campaign", partitions=1)
    config = collector_settings(settings, topic, max_body_bytes=64 * 1024, max_batch_items=50, coalesce_ms=1.0,
                                source_rate_per_second=1e8, source_rate_burst=1e8)
    with running_collector(config) as runner:
        result = campaign(runner.url, KEY, bodies=3000, seed=11, connections=8, max_body_bytes=64 * 1024,
                          max_items=50)
    assert result["answers_500_or_more"] == 0, result["server_error_samples"]
    assert result["collector_still_serving"] and result["answers_4xx_without_reason"] == 0
    assert result["answers_202_malformed"] == 0
    families = {name.split(":")[0] for name in result["answers_by_family"]}
    assert families == {"valid", "field", "envelope", "bytes", "nested", "encoding", "headers", "huge"}
    statuses = set(result["answers_by_status"])
    assert {"202", "400", "413", "415"} <= statuses, statuses
    assert result["bodies_sent"] == 3000 and result["bodies_by_path"] == {"/v1/metrics": 296, "/v1/reports": 2704}
