"""The one interface silences and inhibitions share (Alertmanager's ``Muter``).

A muter says why an alert must not be notified, or ``None``. Muted alerts are
still emitted and recorded (alerts topic, ClickHouse); only notification stops.
"""

from __future__ import annotations

from typing import Protocol

from core.schemas import Alert


class Muter(Protocol):
    def mutes(self, alert: Alert) -> str | None:
        """A reason an on-call engineer can read, or None when the alert may notify."""
        ...
