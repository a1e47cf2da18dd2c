"""`outagewatch bench ingest`: reports/s through ``POST /v1/reports`` into Kafka, p99 latency, RSS in a surge.

The collector runs as ``outagewatch collect`` in a subprocess, producing to
a fresh topic; the load generator (``outagewatch.bench.loadgen``) runs in another
process: keep-alive connections, batches of 500 Zipf-spread reports.

Phases: a steady phase (``connections`` connections) whose accepted reports
are checked against the topic: the reports in the records between the end
offsets before and after the phase must be at least the reports the 202s
accepted; then a surge with 10x the connections, where
the collector sheds (503) or samples heartbeats; the collector's peak RSS
(``VmHWM``) is read after it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from typing import Any

from collectors.auth import secret_of
from core import codec
from core.config import Settings
from core.kafka_admin import ensure_topics
from outagewatch.bench.loadgen import LoadSpec, generate
from outagewatch.pipeline.collector import CollectorProcess
from outagewatch.pipeline.processes import cpu_seconds, memory_mib
from outagewatch.stack.process import free_port

API_KEY = "bench:bench-key"


def _end_offsets(bootstrap: str, topic: str) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def _reports_between(bootstrap: str, before: dict[Any, int], after: dict[Any, int]) -> int:
    """Reports in the records between two sets of end offsets (decoded as the worker reads them)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20)
    total = 0
    try:
        wanted = [tp for tp in after if after[tp] > before.get(tp, 0)]
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, before.get(tp, 0))
        remaining = set(wanted)
        deadline = time.monotonic() + 300
        while remaining and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=1000).items():
                for message in messages:
                    if message.offset < after[tp]:
                        reports, rejected = codec.decode_value(message.value)
                        total += len(reports) + len(rejected)
                if consumer.position(tp) >= after[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()
    return total


def _load(spec: LoadSpec) -> dict[str, Any]:
    # A separate process, so the generator does not share the collector's GIL.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(generate, (spec,))


def run(settings: Settings, quick: bool = False, connections: int = 8, rooms: int = 100,
        **_: Any) -> list[dict[str, Any]]:
    steady_s, surge_s = (4.0, 3.0) if quick else (30.0, 15.0)
    bootstrap = settings.kafka.bootstrap
    topic = f"bench-client-reports-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: settings.kafka.partitions})
    port = free_port()
    env = {
        "OUTAGEWATCH_TOPICS_CLIENT_REPORTS": topic,
        "OUTAGEWATCH_COLLECTOR_API_KEYS": API_KEY,
        "OUTAGEWATCH_COLLECTOR_RATE_PER_SECOND": "10000000",
        "OUTAGEWATCH_COLLECTOR_RATE_BURST": "10000000",
        # The load comes from one address: its network's bucket must not be the limit either.
        "OUTAGEWATCH_COLLECTOR_SOURCE_RATE_PER_SECOND": "10000000",
        "OUTAGEWATCH_COLLECTOR_SOURCE_RATE_BURST": "10000000",
    }
    results: list[dict[str, Any]] = []
    try:
        with CollectorProcess(port, env=env) as collector:
            warm = LoadSpec(collector.url, secret_of(API_KEY), 1.0, connections, rooms=rooms, seed=1)
            _load(warm)
            before = _end_offsets(bootstrap, topic)
            cpu_before = cpu_seconds(collector.pid)
            steady = _load(LoadSpec(collector.url, secret_of(API_KEY), steady_s, connections, rooms=rooms))
            cpu_after = cpu_seconds(collector.pid)
            after = _end_offsets(bootstrap, topic)
            steady_memory = memory_mib(collector.pid)
            in_kafka = _reports_between(bootstrap, before, after)
            results.append({
                "benchmark": "ingest", "phase": "steady", "batch": 500, "connections": connections, "rooms": rooms,
                # OUTAGEWATCH_COLLECTOR_PROCESSES (collect --processes): CPU and memory are their sum.
                "collector_processes": settings.collector.processes,
                "accepted_reports_per_s": steady["accepted_per_s"], "latency_ms_p50": steady["latency_ms_p50"],
                "latency_ms_p99": steady["latency_ms_p99"], "statuses": steady["statuses"],
                "kafka_messages_added": sum(after.values()) - sum(before.values()),
                "reports_in_kafka": in_kafka, "kafka_verified": in_kafka >= steady["accepted"],
                "collector_rss_mib": steady_memory["rss_mib"],
                # What the collector itself spent: on a shared machine its rate says less than its CPU.
                "collector_cpu_us_per_report": (round((cpu_after - cpu_before) * 1e6 / steady["accepted"], 2)
                                                if cpu_before is not None and cpu_after is not None
                                                and steady["accepted"] else None),
                "loadavg_1m": round(os.getloadavg()[0], 2), "quick": quick,
            })
            surge = _load(LoadSpec(collector.url, secret_of(API_KEY), surge_s, connections * 10, rooms=rooms,
                                   seed=11))
            memory = memory_mib(collector.pid)
            results.append({
                "benchmark": "ingest", "phase": "surge_10x", "connections": connections * 10,
                "accepted_reports_per_s": surge["accepted_per_s"], "latency_ms_p99": surge["latency_ms_p99"],
                "statuses": surge["statuses"], "shed_503": surge["statuses"].get("503", 0),
                "heartbeats_sampled_out": surge["sampled_out"],
                "collector_peak_rss_mib": memory["peak_rss_mib"], "quick": quick,
            })
    finally:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
    return results
