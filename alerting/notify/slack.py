"""Slack-compatible incoming-webhook message: ``{"text": ..., "blocks": [...]}``.

``text`` is the fallback shown in notifications; ``blocks`` carry the detail.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="f", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000,
...           summary="room-17: crash reports 42x baseline (1,260 clients in 10 s)")
>>> payload(a)["text"]
':rotating_light: [FIRING critical] room-17: crash reports 42x baseline (1,260 clients in 10 s)'
"""

from __future__ import annotations

from typing import Any

from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms


def _listing(names: list[str], limit: int = 20) -> str:
    more = f" +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def payload(alert: Alert) -> dict[str, Any]:
    icon = ":white_check_mark:" if alert.status == "resolved" else ":rotating_light:"
    text = f"{icon} [{alert.status.upper()} {alert.severity}] {alert.summary}"
    facts = [
        f"*scope* {alert.scope} `{alert.key}`",
        f"*kind* {alert.kind}",
        f"*since* {format_ms(alert.starts_at)}",
    ]
    if alert.ends_at is not None:
        facts.append(f"*ended* {format_ms(alert.ends_at)}")
    facts.append(f"*fingerprint* `{alert.fingerprint}`")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)}]},
    ]
    if alert.affected:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*affected ({len(alert.affected)})* {_listing(alert.affected)}"},
            }
        )
    if alert.evidence:
        lines = [
            f"{e.detector}: observed {e.observed:g}, baseline {e.baseline:g}, score {e.score:.2f}"
            for e in alert.evidence
        ]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines[:10])}})
    return {"text": text, "blocks": blocks}


class SlackNotifier(JsonPostNotifier):
    def __init__(self, url: str, name: str = "slack", timeout_seconds: float = 10.0) -> None:
        super().__init__(url, name, timeout_seconds)

    def body(self, alert: Alert) -> Any:
        return payload(alert)
