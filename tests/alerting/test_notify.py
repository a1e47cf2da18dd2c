"""Notifier payloads (pure) and the settings that pick notifiers."""

from __future__ import annotations

import msgspec

from alerting.notify.alertmanager import payload as alertmanager_payload
from alerting.notify.configured import notifiers_from_settings
from alerting.notify.pagerduty import payload as pagerduty_payload
from alerting.notify.slack import payload as slack_payload
from alerting.notify.webhook import payload as webhook_payload
from core.config import load_settings
from core.schemas import Alert, Evidence, decode
from tests.alerting.helpers import T0

INCIDENT = Alert(
    fingerprint="abc",
    status="firing",
    scope="cluster",
    key="eu-west",
    kind="correlated",
    severity="warning",
    starts_at=T0,
    event_ts=T0 + 10_000,
    summary="eu-west: 30 of 40 active rooms alerting",
    labels={"region": "eu-west", "9bad-name": "x"},
    evidence=[Evidence(detector="correlation", observed=30, baseline=40, score=0.75)],
    affected=[f"room-{i}" for i in range(30)],
)


def test_webhook_body_is_the_alert_event_and_decodes_back() -> None:
    body = msgspec.json.encode(webhook_payload(INCIDENT))
    assert decode(body, Alert) == INCIDENT


def test_slack_lists_affected_rooms_and_evidence() -> None:
    message = slack_payload(INCIDENT)
    assert message["text"] == ":rotating_light: [FIRING warning] eu-west: 30 of 40 active rooms alerting"
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts[1].startswith("*affected (30)* room-0, room-1") and texts[1].endswith("+10 more")
    assert texts[2] == "correlation: observed 30, baseline 40, score 0.75"


def test_pagerduty_trigger_has_group_and_class() -> None:
    body = pagerduty_payload(INCIDENT, "key")
    assert body["payload"]["group"] == "eu-west" and body["payload"]["class"] == "correlated"
    assert body["payload"]["custom_details"]["affected"][:2] == ["room-0", "room-1"]


def test_alertmanager_labels_are_valid_and_resolved_ends_when_it_recovered() -> None:
    firing = alertmanager_payload(INCIDENT, hold_seconds=60)[0]
    assert firing["labels"]["_9bad_name"] == "x"
    assert firing["endsAt"] == "2026-11-22T05:01:10.000Z"  # event time + hold
    assert firing["annotations"]["affected"].startswith("room-0, room-1")
    resolved = Alert(**{**msgspec.structs.asdict(INCIDENT), "status": "resolved", "ends_at": T0 + 50_000})
    assert alertmanager_payload(resolved)[0]["endsAt"] == "2026-11-22T05:00:50.000Z"
    assert (
        alertmanager_payload(resolved, generator_url="http://grafana/d/rooms")[0]["generatorURL"]
        == "http://grafana/d/rooms"
    )


def test_notifiers_from_settings() -> None:
    settings = load_settings(
        env={
            "OUTAGEWATCH_ALERTING_SLACK_WEBHOOK_URL": "http://slack/hook",
            "OUTAGEWATCH_ALERTING_PAGERDUTY_ROUTING_KEY": "R",
            "OUTAGEWATCH_ALERTING_PAGERDUTY_URL": "http://pd/v2/enqueue",
        }
    ).alerting
    notifiers = notifiers_from_settings(settings)
    assert [(n.name, n.url) for n in notifiers] == [
        ("slack", "http://slack/hook"),
        ("pagerduty", "http://pd/v2/enqueue"),
    ]
    assert notifiers_from_settings(load_settings(env={}).alerting) == []
