"""Where a page leads: the Grafana board, the runbook, how to silence it.

One ``Links`` builder, used by every notifier, so a Slack message, a PagerDuty
event and a webhook point at the same board with the same time range.

>>> from core.schemas import Alert
>>> links = Links(grafana_url="http://grafana:3000/", alertmanager_url="http://am:9093")
>>> a = Alert(fingerprint="68e1", status="firing", scope="room", key="room 17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000, summary="")
>>> found = links.of(a)
>>> found.board
'http://grafana:3000/d/outagewatch-room?orgId=1&var-room=room+17&from=1795321800000&to=now'
>>> found.runbook
'https://runbooks.example.com/outagewatch/crash'
>>> found.silence_command
"outagewatch silence add --match scope=room --match 'key=room 17' --match kind=crash --duration 2h --comment '<why>'"
>>> found.silence_url
'http://am:9093/#/silences/new?filter=%7Balertname%3D%22crash%22%2Cscope%3D%22room%22%2Ckey%3D%22room%2017%22%7D'
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from core.config import AlertingSettings, GrafanaSettings, runbook_template_error
from core.schemas import Alert

# The boards as ``dashboards/boards`` defines them (uid and the variable a key fills in).
# Alerting sits below dashboards, so it cannot import them; tests/alerting/test_links.py
# checks these against the built boards.
ROOM_BOARD = ("outagewatch-room", "room")
SERVICE_BOARD = ("outagewatch-services", "service")
OVERVIEW_BOARD = "outagewatch-exec"
INCIDENTS_BOARD = "outagewatch-incidents"

# A board opened for an alert starts this long before it (the calm before) ...
LEAD_MS = 30 * 60_000
# ... and, once resolved, ends this long after it recovered.
TRAIL_MS = 10 * 60_000
SILENCE_DURATION = "2h"
_ALERTMANAGER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class AlertLinks:
    board: str
    runbook: str
    silence_command: str
    silence_url: str = ""  # only with an Alertmanager to silence in


@dataclass(frozen=True)
class Links:
    grafana_url: str = GrafanaSettings.url
    runbook_base: str = AlertingSettings.runbook_base_url
    runbook_template: str = AlertingSettings.runbook_url_template
    alertmanager_url: str = ""
    lead_ms: int = LEAD_MS
    trail_ms: int = TRAIL_MS
    silence_duration: str = SILENCE_DURATION

    def __post_init__(self) -> None:
        problem = runbook_template_error(self.runbook_template)
        if problem is not None:
            raise ValueError(f"alerting runbook_url_template {self.runbook_template!r}: {problem}")

    @classmethod
    def from_settings(cls, alerting: AlertingSettings, grafana: GrafanaSettings) -> Links:
        return cls(grafana.url, alerting.runbook_base_url, alerting.runbook_url_template, alerting.alertmanager_url)

    def of(self, alert: Alert) -> AlertLinks:
        return AlertLinks(self.board(alert), self.runbook(alert), self.silence_command(alert),
                          self.silence_url(alert))

    def board(self, alert: Alert) -> str:
        """The board of the alert's room or service, its variable set, from before it started."""
        if alert.scope == "room":
            uid, variables = ROOM_BOARD[0], {ROOM_BOARD[1]: alert.key}
        elif alert.scope == "service":
            uid, variables = SERVICE_BOARD[0], {SERVICE_BOARD[1]: alert.key}
        elif alert.scope in ("cluster", "global"):
            uid, variables = INCIDENTS_BOARD, {}
        else:  # platform, app_version, region: the overview shows them side by side
            uid, variables = OVERVIEW_BOARD, {}
        ends = alert.ends_at if alert.status == "resolved" and alert.ends_at is not None else None
        query = {"orgId": "1", **{f"var-{name}": value for name, value in variables.items()},
                 "from": str(alert.starts_at - self.lead_ms),
                 "to": "now" if ends is None else str(ends + self.trail_ms)}
        return f"{self.grafana_url.rstrip('/')}/d/{uid}?{urlencode(query)}"

    def runbook(self, alert: Alert) -> str:
        parts = {"kind": alert.kind, "scope": alert.scope, "key": alert.key, "fingerprint": alert.fingerprint}
        return self.runbook_template.format(base=self.runbook_base.rstrip("/"),
                                            **{k: quote(v, safe="") for k, v in parts.items()})

    def silence_command(self, alert: Alert) -> str:
        """The ``outagewatch silence add`` line that mutes this alert (its identity labels)."""
        words = ["outagewatch", "silence", "add"]
        for name, value in _identity(alert):
            words += ["--match", f"{name}={value}"]
        words += ["--duration", self.silence_duration, "--comment", "<why>"]
        return shlex.join(words)

    def silence_url(self, alert: Alert) -> str:
        """Alertmanager's new-silence form, prefilled with this alert's labels ("" without Alertmanager)."""
        if not self.alertmanager_url:
            return ""
        matchers = [("alertname", alert.kind)] + [(n, v) for n, v in _identity(alert) if n != "kind"]
        shown = ",".join(f'{name}="{_escape(value)}"' for name, value in matchers
                         if _ALERTMANAGER_NAME.match(name))
        return f"{self.alertmanager_url.rstrip('/')}/#/silences/new?filter={quote('{' + shown + '}', safe='')}"


def _identity(alert: Alert) -> list[tuple[str, str]]:
    # (scope, key, kind) is what names an alert (its fingerprint): a silence on them mutes this one only.
    return [("scope", alert.scope), ("key", alert.key), ("kind", alert.kind)]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
