"""The notifiers the settings ask for, each with the same links (board, runbook, silence).

>>> from core.config import load_settings
>>> s = load_settings(env={"OUTAGEWATCH_ALERTING_WEBHOOK_URLS": "http://a/hook,http://b/hook",
...                        "OUTAGEWATCH_ALERTING_ALERTMANAGER_WEBHOOK_URLS": "http://c/am-hook",
...                        "OUTAGEWATCH_ALERTING_ALERTMANAGER_URL": "http://am:9093"})
>>> [n.name for n in notifiers_from_settings(s.alerting, s.grafana)]
['webhook-1', 'webhook-2', 'am-webhook-1', 'alertmanager']
"""

from __future__ import annotations

from alerting.links import Links
from alerting.notify import Notifier
from alerting.notify.alertmanager import AlertmanagerNotifier
from alerting.notify.amwebhook import AlertmanagerWebhookNotifier
from alerting.notify.pagerduty import PagerDutyNotifier
from alerting.notify.slack import SlackNotifier
from alerting.notify.webhook import WebhookNotifier
from core.config import AlertingSettings, GrafanaSettings


def notifiers_from_settings(settings: AlertingSettings, grafana: GrafanaSettings | None = None) -> list[Notifier]:
    links = Links.from_settings(settings, grafana or GrafanaSettings())
    notifiers: list[Notifier] = [
        WebhookNotifier(url, name=f"webhook-{i}", links=links) for i, url in enumerate(settings.webhook_urls, start=1)
    ]
    notifiers += [
        AlertmanagerWebhookNotifier(url, name=f"am-webhook-{i}", links=links)
        for i, url in enumerate(settings.alertmanager_webhook_urls, start=1)
    ]
    if settings.slack_webhook_url:
        notifiers.append(SlackNotifier(settings.slack_webhook_url, links=links))
    if settings.pagerduty_routing_key:
        notifiers.append(PagerDutyNotifier(settings.pagerduty_routing_key, settings.pagerduty_url, links=links))
    if settings.alertmanager_url:
        # Held twice the re-notification interval: re-sent before Alertmanager would expire it.
        notifiers.append(AlertmanagerNotifier(settings.alertmanager_url, hold_seconds=2 * settings.renotify_seconds,
                                              links=links))
    return notifiers
