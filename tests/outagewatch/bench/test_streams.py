"""Smoke runs of the streams and peer benchmarks on the real broker (the lead measures the real figures)."""

from __future__ import annotations

import pytest

from core.config import Settings
from outagewatch.bench import peer
from outagewatch.bench import streams as streams_bench

pytestmark = pytest.mark.integration


def test_ours_and_the_naive_peer_fold_every_report_of_a_prepared_topic(settings: Settings,
                                                                      kafka_bootstrap: str) -> None:
    topic = peer.prepare_topic(kafka_bootstrap, reports=6_000, rooms=50)
    try:
        ours = streams_bench.consume_prepared(settings, topic, 6_000, timeout_s=60)
        assert "error" not in ours, ours
        assert ours["reports"] == 6_000  # every report folded once: none lost, none doubled
        assert ours["reports_per_s"] and ours["reports_per_s"] > 0 and ours["worker_peak_rss_mb"][0]
        # The naive agent used to crash-loop on its first report and never finish.
        naive = peer.run_peer("naive_faust", kafka_bootstrap, topic, expect=1_000, timeout=60)
        assert "error" not in naive, naive
        assert naive["reports"] >= 1_000 and naive["reports_per_s"] > 0
    finally:
        streams_bench.delete_topics_like(kafka_bootstrap, [topic])
