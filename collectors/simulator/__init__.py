"""Workload simulator: client reports, server metrics and ground-truth labels.

``generate`` yields one-second ticks of event time (reports ordered by
``ts``, metric samples every 10 s); ``labels`` gives the incidents a scenario
injects; ``write_files``, ``send_kafka`` and ``send_http`` deliver ticks,
optionally paced to ``speed`` times event time.
"""

from .engine import Tick, generate
from .labels import labels
from .scenarios import SCENARIOS, Scenario, get_scenario
from .world import DEFAULT_START_MS

__all__ = ["DEFAULT_START_MS", "SCENARIOS", "Scenario", "Tick", "generate", "get_scenario", "labels"]
