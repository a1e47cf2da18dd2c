"""The generic webhook in Alertmanager's payload v4, read by a receiver written for Alertmanager."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec

from alerting.dispatch import Dispatcher
from alerting.links import Links
from alerting.nflog import Nflog
from alerting.notify.amwebhook import AlertmanagerWebhookNotifier
from alerting.notify.configured import notifiers_from_settings
from alerting.stage import Emitted
from core.config import load_settings
from core.schemas import Alert, Evidence
from core.timeutil import ManualClock
from tests.alerting.am_receiver import AmReceiver
from tests.alerting.helpers import T0

FIRING = Alert(fingerprint="4676650f04e6de4c", status="firing", scope="room", key="room-17",
               kind="details_not_available", severity="critical", starts_at=T0, event_ts=T0 + 20_000,
               summary="room-17: details_not_available reports 42x baseline (1,260 clients in 10 s)",
               labels={"region": "eu-west", "app.version": "5.1.0"},
               evidence=[Evidence(detector="volume", observed=1260, baseline=30, score=9.1)])
RESOLVED = msgspec.structs.replace(FIRING, status="resolved", event_ts=T0 + 60_000, ends_at=T0 + 50_000)


def test_a_receiver_written_for_alertmanager_reads_firing_then_resolved() -> None:
    links = Links(grafana_url="http://grafana.example:3000", alertmanager_url="http://am.example:9093")

    async def scenario() -> None:
        receiver = await AmReceiver().start()
        dispatcher = Dispatcher([AlertmanagerWebhookNotifier(receiver.url, name="am-hook", links=links)],
                                Nflog(ManualClock(T0)))
        try:
            outcomes = await dispatcher.send([Emitted(FIRING)])
            assert [o.result for o in outcomes] == ["delivered"], receiver.refused
            outcomes = await dispatcher.send([Emitted(RESOLVED)])
            assert [o.result for o in outcomes] == ["delivered"], receiver.refused
        finally:
            await dispatcher.close()
            await receiver.stop()
        fired, done = receiver.messages
        assert fired.version == "4" and fired.status == "firing" and fired.receiver == "am-hook"
        assert fired.group_labels == {"alertname": "details_not_available", "key": "room-17", "scope": "room"}
        assert fired.group_key == '{}:{alertname="details_not_available", key="room-17", scope="room"}'
        assert done.group_key == fired.group_key  # one group from firing to resolved
        assert fired.common_labels["app_version"] == "5.1.0" and fired.common_labels["severity"] == "critical"
        assert fired.common_annotations["summary"] == FIRING.summary
        assert fired.external_url == "http://am.example:9093" and fired.truncated_alerts == 0
        [alert] = fired.firing()
        assert alert.fingerprint == FIRING.fingerprint and alert.labels == fired.common_labels
        assert alert.starts_at == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
        assert alert.ends_at.year == 1  # Alertmanager's "not ended"
        assert alert.generator_url.startswith("http://grafana.example:3000/d/outagewatch-room?")
        assert alert.annotations["runbook_url"].endswith("/details_not_available")
        assert alert.annotations["silence_url"].startswith("http://am.example:9093/#/silences/new?filter=")
        [ended] = done.resolved()
        assert done.status == "resolved" and not done.firing()
        assert ended.ends_at == datetime(2026, 11, 22, 5, 0, 50, tzinfo=UTC)

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_the_setting_picks_the_alertmanager_format_per_url() -> None:
    settings = load_settings(env={"OUTAGEWATCH_ALERTING_WEBHOOK_URLS": "http://a/native",
                                  "OUTAGEWATCH_ALERTING_ALERTMANAGER_WEBHOOK_URLS": "http://b/am,http://c/am"})
    notifiers = notifiers_from_settings(settings.alerting, settings.grafana)
    assert [(type(n).__name__, getattr(n, "url", "")) for n in notifiers] == [
        ("WebhookNotifier", "http://a/native"),
        ("AlertmanagerWebhookNotifier", "http://b/am"),
        ("AlertmanagerWebhookNotifier", "http://c/am"),
    ]
