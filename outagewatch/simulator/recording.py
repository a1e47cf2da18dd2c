"""A family draw as a recording: reports in arrival order, metric samples, labels.

``Recording`` generates the draw's ticks (``engine``), sends them through its
``Arrivals`` and yields report lines in the order a collector receives them;
the files it writes (``write``) are what ``outagewatch evaluate`` reads. Its
labels are the scenario's (``labels``), each incident with two more fields:

- ``clients_per_min``: the distinct people (weights summed) who reported the
  failure's errors in the incident's first minute, counted in the generated
  data: how loud the failure is when it begins;
- ``silent``: whether what fails stops reporting (kind ``heartbeat_loss`` or
  ``silence``) rather than reporting errors.

Server metrics are generated only with ``with_metrics`` (the simulated
services, see ``simulator.metrics``); without them the labels hold no
``service`` incident, since nothing could show one.

>>> from outagewatch.simulator.families import QUICK, draw
>>> recording = Recording(draw("room_small", 1, QUICK))
>>> lines = [line for batch in recording.report_batches() for line in batch]
>>> [(i["scope"], i["silent"], i["clients_per_min"] >= 3) for i in recording.labels()["incidents"]]
[('room', False, True)]
>>> len(lines) == recording.reports
True
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.schemas import MetricSample, encode

from .arrival import Arrivals
from .engine import ERROR, Tick, generate
from .families import SILENT_KINDS, Draw
from .labels import Incident, incidents

FIRST_MINUTE_MS = 60_000


class Loudness:
    """Distinct people reporting each incident's errors in its first minute (see the module doc)."""

    def __init__(self, found: list[Incident], start_ms: int) -> None:
        self.windows = [(incident.effect, start_ms + incident.first_s * 1000) for incident in found]
        self.people: list[dict[int, float]] = [{} for _ in found]

    def add(self, tick: Tick) -> None:
        columns = tick.columns
        if not len(columns):
            return
        origin = columns.origins()
        for slot, (effect, start) in enumerate(self.windows):
            if not start - 1000 <= tick.start_ms < start + FIRST_MINUTE_MS:
                continue
            mine = (origin == effect) & (columns.kind == ERROR) & (columns.ts >= start) & (columns.ts < start + FIRST_MINUTE_MS)
            if not mine.any():
                continue
            people = self.people[slot]
            for client, weight in zip(columns.client[mine].tolist(), columns.weights()[mine].tolist(), strict=True):
                people[client] = max(weight, people.get(client, 0.0))

    def per_minute(self, slot: int) -> float:
        return round(float(sum(self.people[slot].values())), 1)


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
        return generate(draw.scenario, draw.seed, start_ms=draw.start_ms, world=draw.world, with_metrics=with_metrics)

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
        """The labels document, with ``clients_per_min`` from the last ``report_batches`` run."""
        out = []
        for slot, incident in enumerate(self.incidents):
            label = incident.as_label(self.draw.start_ms)
            label["silent"] = incident.label.kind in SILENT_KINDS
            label["clients_per_min"] = self.loudness.per_minute(slot)
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
