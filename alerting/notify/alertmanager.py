"""Alertmanager: ``POST /api/v2/alerts`` so teams keep their own routing.

Alertmanager identifies an alert by its label set (``alert_labels``). A firing
alert gets an ``endsAt`` in the future (``hold_seconds`` past its event time)
because Alertmanager resolves an alert whose ``endsAt`` passes: outagewatch
re-sends at each re-notification, and if it dies, Alertmanager lets the alert
expire instead of keeping it forever. A resolved alert's ``endsAt`` is when it
recovered.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000,
...           summary="room-17: crash", labels={"region": "eu-west", "app.version": "5.1"})
>>> body = payload(a, hold_seconds=600)[0]
>>> body["labels"]["alertname"], body["labels"]["app_version"], body["startsAt"], body["endsAt"]
('crash', '5.1', '2026-11-22T05:00:00.000Z', '2026-11-22T05:10:20.000Z')
"""

from __future__ import annotations

import re
from typing import Any

from alerting.identity import alert_labels
from alerting.links import AlertLinks, Links
from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms

_INVALID = re.compile(r"[^A-Za-z0-9_]")


def _label_name(name: str) -> str:
    # Alertmanager label names are [A-Za-z_][A-Za-z0-9_]*.
    clean = _INVALID.sub("_", name)
    return clean if clean and not clean[0].isdigit() else f"_{clean}"


def am_labels(alert: Alert) -> dict[str, str]:
    """The alert's labels as Alertmanager accepts them (valid names, no empty values)."""
    return {_label_name(k): v for k, v in alert_labels(alert).items() if v}


def am_annotations(alert: Alert, links: AlertLinks | None = None) -> dict[str, str]:
    """What Alertmanager shows beside the labels, with the board, runbook and silence links.

    ``runbook_url`` and ``dashboard`` are the names Prometheus alerting rules conventionally use.
    """
    found = {"summary": alert.summary, "fingerprint": alert.fingerprint}
    if alert.affected:
        found["affected"] = ", ".join(alert.affected)
    if alert.evidence:
        found["evidence"] = "; ".join(
            f"{e.detector}: observed {e.observed:g} baseline {e.baseline:g} score {e.score:.2f}" for e in alert.evidence
        )
    if links is not None:
        found.update(dashboard=links.board, runbook_url=links.runbook, silence_command=links.silence_command)
        if links.silence_url:
            found["silence_url"] = links.silence_url
    return found


def payload(alert: Alert, hold_seconds: float = 7200.0, generator_url: str = "",
            links: AlertLinks | None = None) -> list[dict[str, Any]]:
    if alert.status == "resolved":
        ends = max(alert.ends_at if alert.ends_at is not None else alert.event_ts, alert.starts_at)
    else:
        ends = alert.event_ts + int(hold_seconds * 1000)
    body: dict[str, Any] = {
        "labels": am_labels(alert),
        "annotations": am_annotations(alert, links),
        "startsAt": format_ms(alert.starts_at),
        "endsAt": format_ms(ends),
    }
    # The board is where the alert came from, the closest thing outagewatch has to a rule's page.
    source = generator_url or (links.board if links is not None else "")
    if source:
        body["generatorURL"] = source
    return [body]


class AlertmanagerNotifier(JsonPostNotifier):
    def __init__(
        self,
        base_url: str,
        name: str = "alertmanager",
        hold_seconds: float = 7200.0,
        generator_url: str = "",
        timeout_seconds: float = 10.0,
        links: Links | None = None,
    ) -> None:
        super().__init__(base_url.rstrip("/") + "/api/v2/alerts", name, timeout_seconds)
        self._hold_seconds = hold_seconds
        self._generator_url = generator_url
        self._links = links or Links(alertmanager_url=base_url)

    def body(self, alert: Alert) -> Any:
        return payload(alert, self._hold_seconds, self._generator_url, self._links.of(alert))
