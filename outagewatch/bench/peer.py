"""Benchmark `peer`: our window aggregation against Quix Streams and a naive Faust agent.

All contenders read the same prepared topic on the same broker in the same
run, one after another, each in its own process; the figure is reports/s from
the first message to the last report, and our ratio to each peer.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from typing import Any

from outagewatch import schemas
from outagewatch.config import Settings
from outagewatch.stack.kafka import ensure_topics

PEERS = {
    "quix_streams": "outagewatch.bench.peers.quix_window",
    "naive_faust": "outagewatch.bench.peers.naive_faust",
}
# Event time advances 20k reports per second: 10 s windows of ~200k reports.
REPORTS_PER_EVENT_SECOND = 20_000


def prepare_topic(bootstrap: str, reports: int, rooms: int, per_message: int = 100, seed: int = 11,
                  partitions: int = 8) -> str:
    """A fresh topic of ReportBatch messages keyed by room, as the collector writes them."""
    from kafka import KafkaProducer

    topic = f"bench-peer-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: partitions})
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1 << 20,
                             max_request_size=8 << 20)
    start_ms = 1_795_323_600_000
    sent = 0
    while sent < reports:
        room = f"room-{int(rng.paretovariate(1.2)) % rooms}"
        batch = []
        for _ in range(min(per_message, reports - sent)):
            ts = start_ms + sent * 1000 // REPORTS_PER_EVENT_SECOND
            is_error = rng.random() < 0.05
            batch.append(schemas.ClientReport(
                report_id=f"r{sent}", ts=ts, client_id=f"c{rng.randrange(200_000)}", room_id=room,
                kind="error" if is_error else "heartbeat", platform="ios",
                error_code="crash" if is_error else None))
            sent += 1
        producer.send(topic, key=room.encode(), value=schemas.encode(schemas.ReportBatch(batch)))
    producer.flush()
    producer.close()
    return topic


def run_peer(name: str, bootstrap: str, topic: str, expect: int, timeout: float = 600) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", PEERS[name], "--bootstrap", bootstrap, "--topic", topic, "--expect", str(expect)],
        capture_output=True, text=True, timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"peer": name, "error": f"exit {result.returncode}: {result.stderr[-1500:]}"}
    figure: dict[str, Any] = json.loads(lines[-1])
    figure["reports_per_s"] = round(figure["reports"] / figure["seconds"]) if figure.get("seconds") else None
    return figure


def run(settings: Settings, quick: bool = False, reports: int = 1_000_000, rooms: int = 1000,
        naive_reports: int = 100_000) -> list[dict[str, Any]]:
    if quick:
        reports, naive_reports = 50_000, 10_000
    bootstrap = settings.kafka.bootstrap
    topic = prepare_topic(bootstrap, reports, rooms)
    results: list[dict[str, Any]] = []
    ours = _run_ours(settings, topic, reports)
    results.append(ours)
    # The naive agent is orders of magnitude slower: give it a prefix of the same topic.
    for name, expect in (("quix_streams", reports), ("naive_faust", naive_reports)):
        figure = run_peer(name, bootstrap, topic, expect)
        figure["bench"] = "peer"
        if ours.get("reports_per_s") and figure.get("reports_per_s"):
            figure["ours_ratio"] = round(ours["reports_per_s"] / figure["reports_per_s"], 2)
        results.append(figure)
    return results


def _run_ours(settings: Settings, topic: str, reports: int) -> dict[str, Any]:
    from outagewatch.bench import streams as streams_bench

    figure = streams_bench.consume_prepared(settings, topic, reports)
    figure.update({"bench": "peer", "peer": "outagewatch"})
    return figure
