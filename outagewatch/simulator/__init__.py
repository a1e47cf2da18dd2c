"""Workload simulator: client reports, server metrics and ground-truth labels.

``generate`` yields one-second ticks of event time (reports ordered by
``ts``, metric samples every 10 s); ``labels`` gives the incidents a scenario
injects; ``write_files``, ``send_kafka`` and ``send_http`` deliver ticks,
optionally paced to ``speed`` times event time.
"""

from .engine import Tick, generate
from .http_target import HttpPolicy, send_http
from .labels import labels
from .pacing import Delivery, Pacer, Progress
from .scenarios import SCENARIOS, Scenario, get_scenario
from .targets import TargetError, send_kafka, write_files
from .world import DEFAULT_START_MS

__all__ = [
    "DEFAULT_START_MS", "SCENARIOS", "Delivery", "HttpPolicy", "Pacer", "Progress", "Scenario", "TargetError",
    "Tick", "generate", "get_scenario", "labels", "send_http", "send_kafka", "write_files",
]
