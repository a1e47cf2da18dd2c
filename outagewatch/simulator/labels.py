"""Ground-truth labels, read from the same intensity curves the engine applies.

An effect with labels is an incident for every stretch of seconds where its
intensity is above 0; the interval covers those whole seconds, so every
injected report lies inside it.
Every service such an effect strains is a ``service`` incident too (kind
``error_rate``), labelled or not in the scenario: its error rate is what the
effect injects.

>>> doc = labels("room_failure", duration_s=3600)
>>> [(i["scope"], i["key"], i["kind"], i["start"], i["end"]) for i in doc["incidents"]]
[('room', 'room-3', 'details_not_available', '2026-11-23T00:45:01.000Z', '2026-11-23T00:56:00.000Z')]
>>> labels("benign_surge")
{'incidents': []}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.timeutil import format_ms

from .scenarios import Label, Scenario, curve_at, get_scenario
from .world import DEFAULT_START_MS


@dataclass(frozen=True)
class Incident:
    """One labelled incident: the effect (index) causing it, its label, its first and last second."""

    id: str
    effect: int
    label: Label
    first_s: int
    last_s: int

    def as_label(self, start_ms: int) -> dict[str, Any]:
        return {"id": self.id, "scope": self.label.scope, "key": self.label.key, "kind": self.label.kind,
                "start": format_ms(start_ms + self.first_s * 1000), "end": format_ms(start_ms + (self.last_s + 1) * 1000)}


def incidents(scenario: str | Scenario, duration_s: int | None = None) -> list[Incident]:
    """Every incident ``scenario`` injects in a run of ``duration_s``, in effect order."""
    plan = get_scenario(scenario)
    duration = int(plan.duration_s if duration_s is None else duration_s)
    seconds = np.arange(duration)
    found: list[Incident] = []
    for index, effect in enumerate(plan.effects):
        if not effect.labels:
            continue
        level = np.asarray(curve_at(effect.intensity, seconds))
        named = {(label.scope, label.key) for label in effect.labels}
        strained = [Label("service", strain.service, "error_rate") for strain in effect.strain
                    if ("service", strain.service) not in named]
        for first, last in runs(level > 0):
            for label in (*effect.labels, *dict.fromkeys(strained)):
                found.append(Incident(f"{plan.name}-{len(found) + 1}-{label.scope}-{label.key}", index, label,
                                      first, last))
    return found


def labels(scenario: str | Scenario, *, duration_s: int | None = None, start_ms: int = DEFAULT_START_MS) -> dict[str, Any]:
    """``{"incidents": [...]}`` in the labels format of docs/design.md, for a run of ``duration_s``."""
    return {"incidents": [incident.as_label(start_ms) for incident in incidents(scenario, duration_s)]}


def runs(on: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
