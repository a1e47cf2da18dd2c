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


def _oversized() -> Alert:
    """An incident past every receiver's limit: a huge summary, thousands of long names, long untrusted labels."""
    return Alert(
        fingerprint="big", status="firing", scope="cluster", key="eu-west", kind="correlated", severity="critical",
        starts_at=T0, event_ts=T0 + 10_000, summary="eu-west: " + "very long summary " * 2_000,
        labels={f"label_{i}": "v" * 5_000 for i in range(200)},
        evidence=[Evidence(detector=f"detector-{i}" * 30, observed=i, baseline=1, score=0.5, detail="d" * 2_000)
                  for i in range(500)],
        affected=[f"room-{i}-" + "x" * 300 for i in range(20_000)],
    )


def test_slack_keeps_an_oversized_alert_within_block_kit_limits() -> None:
    from alerting.links import Links
    from alerting.notify import TRUNCATED
    from alerting.notify.slack import MAX_BLOCKS, MAX_SECTION_TEXT

    alert = _oversized()
    message = slack_payload(alert, Links().of(alert))
    assert len(message["blocks"]) <= MAX_BLOCKS
    assert len(message["text"]) <= MAX_SECTION_TEXT and message["text"].endswith(TRUNCATED)
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    texts += [e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert all(len(text) <= MAX_SECTION_TEXT for text in texts)
    assert sum(text.endswith(TRUNCATED) for text in texts) >= 2  # the summary and the affected listing
    assert any("Runbook" in text for text in texts)


def test_pagerduty_trims_an_oversized_event_under_512_kb_and_keeps_its_links() -> None:
    from alerting.links import Links
    from alerting.notify.pagerduty import MAX_EVENT_BYTES, size

    alert = _oversized()
    links = Links().of(alert)
    untrimmed = len(msgspec.json.encode(msgspec.to_builtins(alert)))
    assert untrimmed > 4 * MAX_EVENT_BYTES
    body = pagerduty_payload(alert, "key", links)
    assert size(body) <= MAX_EVENT_BYTES
    details = body["payload"]["custom_details"]
    assert 0 < len(details["affected"]) < 20_000 and details["affected"][0].startswith("room-0-")
    assert "affected" in details["truncated"] and "of 20000 shown" in details["truncated"]
    assert len(body["payload"]["summary"]) <= 1024
    assert [link["text"] for link in body["links"]] == ["Grafana board", "Runbook"]
    assert details["silence_command"] == links.silence_command


def test_pagerduty_leaves_a_small_event_untouched() -> None:
    body = pagerduty_payload(INCIDENT, "key")
    assert "truncated" not in body["payload"]["custom_details"]
    assert body["payload"]["custom_details"]["affected"] == INCIDENT.affected


def test_slack_escapes_a_client_chosen_key_so_it_cannot_mention_the_channel() -> None:
    alert = msgspec.structs.replace(INCIDENT, scope="room", key="<!channel>", summary="<!channel>: crash")
    text = msgspec.json.encode(slack_payload(alert)).decode()
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
