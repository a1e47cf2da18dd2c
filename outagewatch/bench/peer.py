"""Benchmark `peer`: our window aggregation against Quix Streams and a naive Faust agent.

All contenders read the same prepared reports on the same broker in the same
run (ours packed, as our collector writes them; the peers JSON), one after
another, each in its own process; the figure is reports/s from the first
message to the last report, and our ratio to each peer.

- ours: `outagewatch worker` (``outagewatch.bench.streams.consume_prepared``):
  decode, validate, fold every report into room windows with distinct
  listeners and error clients, latency sketches and the region/platform/
  app_version cells, state to the changelog on every batch;
- Quix Streams and the naive Faust agent count reports, errors and heartbeats
  per room window (``peers/common.py``): strictly less work, so the ratio is
  conservative. The naive agent gets a prefix of the topic (``naive_reports``):
  at one table write per report it would take minutes for the whole of it.

The topic has 8 partitions, messages of 100 reports of one room (rooms drawn
from a Pareto law, so a few rooms are big), 20k reports per event-time second.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from core import schemas
from core.codec import encode_json_reports, encode_reports
from core.config import Settings
from core.kafka_admin import ensure_topics

PEERS = {
    "quix_streams": "outagewatch.bench.peers.quix_window",
    "naive_faust": "outagewatch.bench.peers.naive_faust",
}
# Event time advances 20k reports per second: 10 s windows of ~200k reports.
REPORTS_PER_EVENT_SECOND = 20_000


def prepare_topic(bootstrap: str, reports: int, rooms: int, per_message: int = 100, seed: int = 11,
                  partitions: int = 8, encode: Callable[[list[schemas.ClientReport]], bytes] = encode_json_reports,
                  name: str = "bench-peer") -> str:
    """A fresh topic of report messages keyed by room: JSON ``ReportBatch`` values (what the peers read), or
    ``encode``'s (``core.codec.encode_reports``: what the collector writes and our worker reads)."""
    from kafka import KafkaProducer

    topic = f"{name}-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: partitions})
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1 << 20,
                             max_request_size=8 << 20)
    # Event time ending now: the worker refuses reports further from their record's timestamp than
    # event_time.max_age_seconds.
    start_ms = time.time_ns() // 1_000_000 - reports * 1000 // REPORTS_PER_EVENT_SECOND
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
        producer.send(topic, key=room.encode(), value=encode(batch))
    producer.flush()
    producer.close()
    return topic


def run_peer(name: str, bootstrap: str, topic: str, expect: int, timeout: float = 600) -> dict[str, Any]:
    from outagewatch.bench.streams import delete_topics_like

    group = f"peer-{name.split('_')[0]}-{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", PEERS[name], "--bootstrap", bootstrap, "--topic", topic, "--expect", str(expect),
             "--group", group],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"peer": name, "error": f"no result within {timeout:.0f} s"}
    finally:
        delete_topics_like(bootstrap, [], prefixes=(group,), contains=(group,))
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
    from outagewatch.bench.streams import delete_topics_like

    bootstrap = settings.kafka.bootstrap
    # The same reports twice: packed, as our collector writes them, for ours; JSON for the peers.
    topic = prepare_topic(bootstrap, reports, rooms)
    packed_topic = prepare_topic(bootstrap, reports, rooms, encode=encode_reports, name="bench-peer-packed")
    results: list[dict[str, Any]] = []
    try:
        ours = _run_ours(settings, packed_topic, reports)
        results.append(ours)
        # The naive agent is orders of magnitude slower: give it a prefix of the same topic.
        for name, expect in (("quix_streams", reports), ("naive_faust", naive_reports)):
            figure = run_peer(name, bootstrap, topic, expect)
            figure["bench"] = "peer"
            if ours.get("reports_per_s") and figure.get("reports_per_s"):
                figure["ours_ratio"] = round(ours["reports_per_s"] / figure["reports_per_s"], 2)
            results.append(figure)
    finally:
        delete_topics_like(bootstrap, [topic, packed_topic])
    return results


def _run_ours(settings: Settings, topic: str, reports: int) -> dict[str, Any]:
    from outagewatch.bench import streams as streams_bench

    figure = streams_bench.consume_prepared(settings, topic, reports)
    figure.update({"bench": "peer", "peer": "outagewatch"})
    return figure
