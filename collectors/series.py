"""The bounds of one pushed metric point, for the receivers of formats we do not define (OTLP, remote-write).

Everything in a point is written by the sender: its service, host, metric
name, labels and value. The bounds are ``core.schemas.MetricSample``'s
(service 1-64, host <= 255, cluster <= 32, name 1-200) plus a cap on the
labels (how many, how long each name and value), so a sender cannot put a
megabyte into one Kafka record or one ClickHouse row. A point outside them
is refused with a reason, never cut to fit: a truncated label would merge
two series without anyone noticing.

>>> limits = SeriesLimits(max_labels=2, max_label_length=8)
>>> print(limits.problem("api", "h1", "", "cpu", 0.5, {"core": "0"}))
None
>>> print(limits.problem("api", "h1", "", "cpu", float("nan"), {}))
value nan is not a finite number
>>> print(limits.problem("api", "h1", "", "cpu", 1.0, {"a": "1", "b": "2", "c": "3"}))
3 labels; at most 2 per point (collector.max_metric_labels)
>>> print(limits.problem("", "h1", "", "cpu", 1.0, {}))
service is empty: set the resource attribute service.name (OTLP) or the job label (remote-write)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import CollectorSettings

MAX_SERVICE = 64
MAX_HOST = 255
MAX_CLUSTER = 32
MAX_NAME = 200


@dataclass(frozen=True)
class SeriesLimits:
    max_labels: int = 32
    max_label_length: int = 256

    @classmethod
    def from_settings(cls, c: CollectorSettings) -> SeriesLimits:
        return cls(c.max_metric_labels, c.max_metric_label_length)

    def problem(self, service: str, host: str, cluster: str, name: str, value: float,
                labels: dict[str, str]) -> str | None:
        """Why this point is refused, or None when it is within every bound."""
        if not service:
            return ("service is empty: set the resource attribute service.name (OTLP) or the job label "
                    "(remote-write)")
        if len(service) > MAX_SERVICE:
            return f"service {service[:40]!r}... is {len(service)} characters; at most {MAX_SERVICE}"
        if len(host) > MAX_HOST:
            return f"host is {len(host)} characters; at most {MAX_HOST}"
        if len(cluster) > MAX_CLUSTER:
            return f"region/cluster {cluster[:40]!r} is {len(cluster)} characters; at most {MAX_CLUSTER}"
        if not name:
            return "metric name is empty"
        if len(name) > MAX_NAME:
            return f"metric name {name[:40]!r}... is {len(name)} characters; at most {MAX_NAME}"
        if not math.isfinite(value):
            return f"value {value} is not a finite number"
        if len(labels) > self.max_labels:
            return f"{len(labels)} labels; at most {self.max_labels} per point (collector.max_metric_labels)"
        for label, text in labels.items():
            if len(label) > self.max_label_length or len(text) > self.max_label_length:
                return (f"label {label[:40]!r} is longer than {self.max_label_length} characters (name or value; "
                        "collector.max_metric_label_length)")
        return None
