"""Slack-compatible incoming-webhook message: ``{"text": ..., "blocks": [...]}``.

``text`` is the fallback shown in notifications; ``blocks`` carry the detail
and the links (board, runbook, silence). Slack refuses a message past Block
Kit's limits (50 blocks, 3,000 characters of section text, 10 context
elements), so every text is clipped with a marker and the block list capped:
an oversized incident is cut short, never refused.

>>> from core.schemas import Alert
>>> a = Alert(fingerprint="f", status="firing", scope="room", key="room-17", kind="crash",
...           severity="critical", starts_at=1795323600000, event_ts=1795323620000,
...           summary="room-17: crash reports 42x baseline (1,260 clients in 10 s)")
>>> payload(a)["text"]
':rotating_light: [FIRING critical] room-17: crash reports 42x baseline (1,260 clients in 10 s)'
"""

from __future__ import annotations

from typing import Any

from alerting.links import AlertLinks, Links
from alerting.notify import clip
from alerting.notify.http import JsonPostNotifier
from core.schemas import Alert
from core.timeutil import format_ms

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
# Slack truncates the top-level text past 40,000 characters; a notification shows far less.
MAX_FALLBACK_TEXT = 3000


def _listing(names: list[str], limit: int = 20) -> str:
    more = f" +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}


def _context(parts: list[str]) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": clip(part, MAX_SECTION_TEXT)} for part in parts[:MAX_CONTEXT_ELEMENTS]]
    return {"type": "context", "elements": elements}


def escape(text: str) -> str:
    """Slack's three control characters, so a client-chosen room key cannot write ``<!channel>``.

    >>> escape("<!channel> & co")
    '&lt;!channel&gt; &amp; co'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    # A "|" inside the URL would end it early in mrkdwn's <url|label>.
    return f"<{escape(url).replace('|', '%7C')}|{label}>"


def payload(alert: Alert, links: AlertLinks | None = None) -> dict[str, Any]:
    icon = ":white_check_mark:" if alert.status == "resolved" else ":rotating_light:"
    text = f"{icon} [{alert.status.upper()} {alert.severity}] {escape(alert.summary)}"
    facts = [
        f"*scope* {alert.scope} `{escape(alert.key)}`",
        f"*kind* {escape(alert.kind)}",
        f"*since* {format_ms(alert.starts_at)}",
    ]
    if alert.ends_at is not None:
        facts.append(f"*ended* {format_ms(alert.ends_at)}")
    facts.append(f"*fingerprint* `{alert.fingerprint}`")
    blocks: list[dict[str, Any]] = [_section(text), _context([" · ".join(facts)])]
    if links is not None:
        shown = [_link(links.board, "Grafana board"), _link(links.runbook, "Runbook")]
        if links.silence_url:
            shown.append(_link(links.silence_url, "Silence in Alertmanager"))
        blocks.append(_section(" · ".join(shown)))
        blocks.append(_context([f"silence: `{escape(links.silence_command)}`"]))
    if alert.affected:
        blocks.append(_section(f"*affected ({len(alert.affected)})* {escape(_listing(alert.affected))}"))
    if alert.evidence:
        lines = [
            f"{e.detector}: observed {e.observed:g}, baseline {e.baseline:g}, score {e.score:.2f}"
            for e in alert.evidence
        ]
        more = f"\n+{len(lines) - 10} more" if len(lines) > 10 else ""
        blocks.append(_section("\n".join(lines[:10]) + more))
    return {"text": clip(text, MAX_FALLBACK_TEXT), "blocks": blocks[:MAX_BLOCKS]}


class SlackNotifier(JsonPostNotifier):
    def __init__(self, url: str, name: str = "slack", timeout_seconds: float = 10.0,
                 links: Links | None = None) -> None:
        super().__init__(url, name, timeout_seconds)
        self._links = links or Links()

    def body(self, alert: Alert) -> Any:
        return payload(alert, self._links.of(alert))
