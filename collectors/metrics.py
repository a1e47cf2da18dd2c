"""The collector's own Prometheus metrics, on a registry per app (tests run several)."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_FIELD = re.compile(r"at `\$(?:\[\d+\])?\.([A-Za-z_]+)")
KNOWN_FIELDS = frozenset({
    "report_id", "ts", "client_id", "room_id", "kind", "platform", "error_code", "app_version", "region",
    "latency_ms", "weight", "service", "name", "value", "host", "cluster", "labels",
})


def rejection_reason(error: str) -> str:
    """A bounded label for an item's validation error: the field it is about.

    >>> rejection_reason("Expected `str` of length <= 64 - at `$.room_id`")
    'invalid_room_id'
    >>> rejection_reason("Object missing required field `ts`")
    'missing_field'
    >>> rejection_reason("JSON is malformed: invalid character (byte 0)")
    'malformed'
    >>> rejection_reason("ts 2099-01-01T00:00:00.000Z is 72 years ahead of its arrival (...)")
    'ts_ahead'
    """
    if "ahead of its arrival" in error:
        return "ts_ahead"
    if "older than its arrival" in error:
        return "ts_too_old"
    match = _FIELD.search(error)
    if match:
        field = match.group(1)
        return f"invalid_{field}" if field in KNOWN_FIELDS else "invalid_other"
    if "missing required field" in error:
        return "missing_field"
    if "malformed" in error or "truncated" in error or "JSON" in error:
        return "malformed"
    return "invalid_other"


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("outagewatch_collector_requests", "HTTP requests by path and status",
                                ["path", "status"], registry=r)
        self.accepted = Counter("outagewatch_collector_accepted", "items acknowledged by Kafka",
                                ["kind"], registry=r)
        self.rejected = Counter("outagewatch_collector_rejected", "items refused by validation, by reason",
                                ["kind", "reason"], registry=r)
        self.duplicates = Counter("outagewatch_collector_duplicates", "reports dropped as a recent report_id",
                                  registry=r)
        self.sampled_out = Counter("outagewatch_collector_heartbeats_sampled_out",
                                   "heartbeats dropped by overload sampling (kept ones carry their weight)",
                                   registry=r)
        self.shed = Counter("outagewatch_collector_shed", "requests answered 503 to protect the collector, by cause",
                            ["cause"], registry=r)
        self.kafka_send_seconds = Histogram(
            "outagewatch_collector_kafka_send_seconds", "from handing a request's records to the producer to acks=all",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r)
        self.inflight = Gauge("outagewatch_collector_inflight_requests", "ingest requests being processed", registry=r)
        self.pending_bytes = Gauge("outagewatch_collector_kafka_pending_bytes",
                                   "bytes handed to the producer and not yet acknowledged (queue depth)", registry=r)
        self.heartbeat_keep = Gauge("outagewatch_collector_heartbeat_keep_ratio",
                                    "fraction of heartbeats kept by overload sampling", registry=r)
        self.rate_limited = Counter("outagewatch_collector_rate_limited", "requests answered 429, by the limit hit "
                                    "(key: the API key's bucket, source: the client network's)", ["limit"], registry=r)
        self.source_buckets = Gauge("outagewatch_collector_source_buckets",
                                    "client networks with a rate bucket (bounded by collector.source_buckets_max)",
                                    registry=r)
        self.key_reloads = Counter("outagewatch_collector_key_reloads", "re-reads of collector.api_keys_file, by "
                                   "outcome (refused: the old keys stay)", ["outcome"], registry=r)
        self.scrapes = Counter("outagewatch_collector_scrapes", "scrapes of server metric targets by outcome",
                               ["service", "outcome"], registry=r)
        self.last_ack = Gauge("outagewatch_collector_last_ack_timestamp_seconds",
                              "when Kafka last acknowledged a request's records", registry=r)
        self.live = Gauge("outagewatch_collector_live", "1 while live (core/health.py's rule)", registry=r)
        self.heartbeat_keep.set(1.0)


class StormMetrics:
    """Fair admission in a storm (``collectors.storm``): which rooms are sampled, at what ratio, what it dropped.

    Room labels are bounded: only the ``top`` sampled rooms sending the most are named, refreshed at each
    scrape (a room no longer sampled disappears); ``rooms`` counts them all.
    """

    def __init__(self, registry: CollectorRegistry, top: int = 10) -> None:
        self.top = top
        self.errors_out = Counter("outagewatch_collector_storm_errors_sampled_out",
                                  "error reports of flooding rooms dropped by storm sampling (kept ones carry "
                                  "their weight)", registry=registry)
        self.rooms = Gauge("outagewatch_collector_storm_sampled_rooms",
                           "rooms whose error reports are being sampled (flooding the collector)", registry=registry)
        self.keep = Gauge("outagewatch_collector_storm_keep_ratio",
                          "fraction of a sampled room's error clients kept (the top rooms by reports/s)",
                          ["room"], registry=registry)
        self.share = Gauge("outagewatch_collector_storm_room_share",
                           "a sampled room's share of the collector's recent reports (the top rooms by reports/s)",
                           ["room"], registry=registry)

    def show(self, sampled: list[tuple[str, float, float]], total: int) -> None:
        """``(room, keep ratio, share)`` of the top sampled rooms, and how many rooms are sampled in all."""
        self.rooms.set(total)
        self.keep.clear()
        self.share.clear()
        for room, keep, share in sampled[: self.top]:
            self.keep.labels(room).set(keep)
            self.share.labels(room).set(round(share, 4))
