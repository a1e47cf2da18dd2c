"""The alert engine's dead man's switch: an always-firing ``Watchdog`` alert, the Prometheus convention.

The engine's process sends it to Alertmanager every ``interval_seconds``
while it runs the alert engine and is live. Each copy expires
``hold_intervals`` intervals later (``endsAt``), so when the copies stop
arriving (the worker died, hangs, lost its Kafka or its network) the alert
resolves in Alertmanager, and the dead man's service its route notifies
(``deploy/prometheus/alertmanager.example.yml``) stops hearing from it and
pages: the monitor is blind.

>>> body = watchdog_payload(now_ms=1_795_323_660_000, started_ms=1_795_323_600_000,
...                         policy=WatchdogPolicy(interval_seconds=60), app_id="outagewatch-streams")[0]
>>> body["labels"]["alertname"], body["labels"]["severity"], body["startsAt"], body["endsAt"]
('Watchdog', 'none', '2026-11-22T05:00:00.000Z', '2026-11-22T05:04:00.000Z')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.timeutil import format_ms

ALERTNAME = "Watchdog"


@dataclass(frozen=True)
class WatchdogPolicy:
    interval_seconds: float = 60.0
    # A copy outlives this many intervals: one lost send does not resolve it.
    hold_intervals: float = 3.0

    @property
    def enabled(self) -> bool:
        return self.interval_seconds > 0


def watchdog_labels(app_id: str) -> dict[str, str]:
    """Its identity in Alertmanager: the same labels every time, one alert per alert engine (app id)."""
    return {"alertname": ALERTNAME, "severity": "none", "component": "alert-engine", "service": "outagewatch",
            "app_id": app_id}


def watchdog_payload(now_ms: int, started_ms: int, policy: WatchdogPolicy, app_id: str,
                     generator_url: str = "") -> list[dict[str, Any]]:
    """The ``POST /api/v2/alerts`` body of one Watchdog copy."""
    body: dict[str, Any] = {
        "labels": watchdog_labels(app_id),
        "annotations": {
            "summary": "outagewatch's alert engine is running and can page. This alert always fires.",
            "description": f"Sent every {policy.interval_seconds:g}s by the worker that runs the alert engine "
                           "while it is live. If it stops arriving, detection and paging are blind: check the "
                           "workers (/healthz, their logs) and Kafka.",
        },
        "startsAt": format_ms(started_ms),
        "endsAt": format_ms(now_ms + int(policy.interval_seconds * policy.hold_intervals * 1000)),
    }
    if generator_url:
        body["generatorURL"] = generator_url
    return [body]
