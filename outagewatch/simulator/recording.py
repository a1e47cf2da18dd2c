"""A family draw as a recording: reports in arrival order, metric samples, labels.

````Recording`` generates the draw's ticks (``engine``), sends them through its
``Arrivals`` and yields report lines in the order a collector receives them;
the files it writes (``write``) are what ``outagewatch evaluate`` reads. Its
labels are the scenario's (``labels``: from the first failing report to the
last), each incident with three more fields, counted in the generated data:

- ``loud_from``: when the failure first had ``LOUD_PEOPLE_PER_MIN`` distinct
  people (weights summed) reporting its errors within the minute before
  (null if never): from then on "at least 5 distinct clients a minute
  report the failure", and the sweep judges its delay from that moment;
- ``peak_clients_per_min``: the most distinct people reporting it within
  any minute;
- ``silent``: whether what fails stops reporting (kind ``heartbeat_loss`` or
  ``silence``) rather than reporting errors.

Server metrics are generated only with ``with_metrics`` (the simulated
services, see ``simulator.metrics``); without them the labels hold no
``service`` incident, since nothing could show one.

>>> from outagewatch.simulator.families import QUICK, draw
>>> recording = Recording(draw("room_small", 1, QUICK))
>>> lines = [line for batch in recording.report_batches() for line in batch]
>>> [(i["scope"], i["silent"], i["peak_clients_per_min"] >= 3) for i in recording.labels()["incidents"]]
[('room', False, True)]
>>> len(lines) == recording.reports
True
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.schemas import MetricSample, encode
from core.timeutil import format_ms

from .arrival import Arrivals
from .engine import ERROR, Tick, generate
from .families import SILENT_KINDS, Draw
from .labels import Incident, incidents

LOUD_PEOPLE_PER_MIN = 5.0
MINUTE_MS = 60_000


class Loudness:
    """Distinct people reporting each incident's errors within the trailing minute (see the module doc)."""

    def __init__(self, found: list[Incident], start_ms: int) -> None:
        self.slots = [(incident.effect, start_ms + incident.first_s * 1000, start_ms + (incident.last_s + 12) * 1000)
                      for incident in found]
        self.recent: list[deque[tuple[int, int]]] = [deque() for _ in found]
        self.last_seen: list[dict[int, tuple[int, float]]] = [{} for _ in found]
        self.people = [0.0 for _ in found]
        self.peak = [0.0 for _ in found]
        self.loud_from: list[int | None] = [None for _ in found]

    def add(self, tick: Tick) -> None:
        columns = tick.columns
        if not len(columns):
            return
        origin, kind = columns.origins(), columns.kind
        for slot, (effect, start, end) in enumerate(self.slots):
            if not start - 1000 <= tick.start_ms < end:
                continue
            mine = (origin == effect) & (kind == ERROR)
            if mine.any():
                rows = zip(columns.ts[mine].tolist(), columns.client[mine].tolist(), columns.weights()[mine].tolist(),
                           strict=True)
                for ts, person, weight in rows:
                    self._report(slot, ts, person, weight)

    def _report(self, slot: int, ts: int, person: int, weight: float) -> None:
        recent, seen = self.recent[slot], self.last_seen[slot]
        while recent and recent[0][0] <= ts - MINUTE_MS:
            old_ts, old = recent.popleft()
            if seen.get(old, (None, 0.0))[0] == old_ts:
                self.people[slot] -= seen.pop(old)[1]
        before = seen.get(person)
        if before is None:
            self.people[slot] += weight
        seen[person] = (ts, max(weight, before[1] if before else 0.0))
        recent.append((ts, person))
        self.peak[slot] = max(self.peak[slot], self.people[slot])
        if self.loud_from[slot] is None and self.people[slot] >= LOUD_PEOPLE_PER_MIN - 1e-9:
            self.loud_from[slot] = ts


class Recording:
    """One draw, generated once per call of ``report_batches``; deterministic."""

    def __init__(self, draw: Draw, with_metrics: bool = False) -> None:
        self.draw = draw
        self.with_metrics = with_metrics
        found = incidents(draw.scenario, draw.duration_s)
        self.incidents = [i for i in found if with_metrics or i.label.scope != "service"]
        self.loudness = Loudness(self.incidents, draw.start_ms)
        self.reports = 0
        self.generate_s = 0.0

    def ticks(self, with_metrics: bool = False) -> Iterator[Tick]:
        draw = self.draw
        # Replayed without a collector, the recording carries the source stamp a collector would add.
        return generate(draw.scenario, draw.seed, start_ms=draw.start_ms, world=draw.world, with_metrics=with_metrics,
                        sources=True)

    def report_batches(self) -> Iterator[list[bytes]]:
        """Report lines (JSON) in arrival order, a batch per second of the run, then the late ones."""
        draw = self.draw
        self.loudness = Loudness(self.incidents, draw.start_ms)
        self.reports = 0
        self.generate_s = 0.0
        arrivals = Arrivals(draw.arrival, draw.seed)
        for tick in self.ticks():
            began = time.process_time()
            self.loudness.add(tick)
            arrivals.push(tick)
            batch = arrivals.due(tick.end_ms)
            self.reports += len(batch)
            self.generate_s += time.process_time() - began
            yield batch
        rest = arrivals.rest()
        self.reports += len(rest)
        yield rest

    def metric_samples(self) -> list[MetricSample]:
        """The simulated services' metrics over the run (a second pass of the engine; empty without metrics)."""
        if not self.with_metrics:
            return []
        return [sample for tick in self.ticks(with_metrics=True) for sample in tick.metrics]

    def labels(self) -> dict[str, Any]:
        """The labels document, its loudness from the last ``report_batches`` run."""
        out = []
        for slot, incident in enumerate(self.incidents):
            label = incident.as_label(self.draw.start_ms)
            loud_from = self.loudness.loud_from[slot]
            label["silent"] = incident.label.kind in SILENT_KINDS
            label["loud_from"] = None if loud_from is None else format_ms(loud_from)
            label["peak_clients_per_min"] = round(self.loudness.peak[slot], 1)
            out.append(label)
        return {"incidents": out}

    def write(self, out_dir: Path) -> dict[str, Any]:
        """``reports.ndjson`` (arrival order), ``labels.json``, ``metrics.ndjson`` (with metrics) and ``draw.json``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "reports.ndjson").open("wb") as handle:
            for batch in self.report_batches():
                if batch:
                    handle.write(b"\n".join(batch) + b"\n")
        if self.with_metrics:
            with (out_dir / "metrics.ndjson").open("wb") as handle:
                for sample in self.metric_samples():
                    handle.write(encode(sample) + b"\n")
        document = self.labels()
        (out_dir / "labels.json").write_text(json.dumps(document, indent=2) + "\n")
        summary = describe(self.draw) | {"reports": self.reports, "incidents": len(document["incidents"])}
        (out_dir / "draw.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def describe(draw: Draw) -> dict[str, Any]:
    """What was drawn, JSON-safe: the family, seed, duration, rooms and their sizes, the parameters."""
    world = draw.world
    audience = [round(float(a)) for a in world.base_audience]
    for room, spec in draw.scenario.rooms.items():
        audience[world.room_index[room]] = round(max(y for _, y in spec.audience))
    return {
        "family": draw.family, "seed": draw.seed, "duration_s": draw.duration_s,
        "rooms": dict(zip(world.room_ids, audience, strict=True)),
        "weights_max": round(float(np.max(world.weight)) if world.weight is not None else 1.0, 1),
        "params": draw.params,
    }
