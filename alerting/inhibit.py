"""Inhibition: no per-room page while its cluster or a global incident is open.

The inhibited alerts are still emitted and recorded; this ``Muter`` only
keeps them from paging (Alertmanager's inhibit rules, fixed to our scopes).
"""

from __future__ import annotations

from typing import Protocol

from alerting.correlate import group_of
from alerting.lifecycle import Tracked
from alerting.policy import GroupingPolicy
from core.schemas import Alert


class IncidentSource(Protocol):
    def open_group(self, group: str) -> Tracked | None: ...

    def open_global(self) -> Tracked | None: ...


class Inhibitor:
    def __init__(self, incidents: IncidentSource, policy: GroupingPolicy) -> None:
        self._incidents = incidents
        self._policy = policy

    def mutes(self, alert: Alert) -> str | None:
        if alert.scope != "global":
            incident = self._incidents.open_global()
            if incident is not None:
                return f"inhibited by global incident {incident.fingerprint}: {incident.summary}"
        if alert.scope in self._policy.leaf_scopes:
            group = group_of(alert.labels, self._policy.group_labels)
            incident = self._incidents.open_group(group[1]) if group else None
            if incident is not None:
                return f"inhibited by cluster incident {incident.key} ({incident.fingerprint})"
        return None
