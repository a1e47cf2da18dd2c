"""Dispatcher against a real local HTTP receiver: retries, no retries, idempotency, the stage's mutes, restarts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from alerting.dispatch import Dispatcher
from alerting.nflog import Nflog
from alerting.notify.pagerduty import PagerDutyNotifier
from alerting.notify.slack import SlackNotifier
from alerting.notify.webhook import WebhookNotifier
from alerting.policy import AlertingPolicy, NotifyPolicy
from alerting.stage import AlertStage, Emitted
from core.schemas import Alert
from core.timeutil import ManualClock
from outagewatch.stack.process import free_port
from tests.alerting.helpers import T0, decision
from tests.alerting.receiver import Receiver

FIRING = Alert(
    fingerprint="4676650f04e6de4c",
    status="firing",
    scope="room",
    key="room-17",
    kind="details_not_available",
    severity="critical",
    starts_at=T0,
    event_ts=T0 + 20_000,
    summary="room-17: details_not_available reports 42x baseline (1,260 clients in 10 s)",
    labels={"region": "eu-west"},
)
RESOLVED = Alert(
    **{
        **{f: getattr(FIRING, f) for f in FIRING.__struct_fields__},
        "status": "resolved",
        "event_ts": T0 + 90_000,
        "ends_at": T0 + 60_000,
    }
)


class Sleeps:
    """Records backoff delays instead of waiting them out (the receiver is real, time is not)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def paging(*alerts: Alert) -> list[Emitted]:
    """Events the alert stage let page."""
    return [Emitted(alert) for alert in alerts]


def dispatcher(notifier: object, nflog: Nflog | None = None, sleeps: Sleeps | None = None) -> Dispatcher:
    return Dispatcher(
        [notifier],  # type: ignore[list-item]
        nflog or Nflog(ManualClock(T0)),
        policy=NotifyPolicy(max_attempts=4, backoff_seconds=0.5),
        sleep=sleeps or Sleeps(),
        rng=random.Random(7),
    )


async def _with_receiver(receiver: Receiver, body) -> None:  # type: ignore[no-untyped-def]
    await receiver.start()
    try:
        await body(receiver)
    finally:
        await receiver.stop()


def run(receiver: Receiver, body) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(asyncio.wait_for(_with_receiver(receiver, body), 30))


def test_503_is_retried_with_backoff_and_delivered_once() -> None:
    sleeps = Sleeps()

    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url + "/hook"), sleeps=sleeps)
        outcomes = await d.send(paging(FIRING))
        await d.close()
        assert [(o.result, o.attempts) for o in outcomes] == [("delivered", 3)]
        assert len(receiver.requests) == 3
        keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
        assert keys == {f"{FIRING.fingerprint}-firing-{T0}"}  # every attempt, one key
        assert len(receiver.delivered) == 1
        assert receiver.delivered[0].body["summary"] == FIRING.summary
        assert receiver.delivered[0].body["fingerprint"] == FIRING.fingerprint

    run(Receiver(fail_first=2, fail_status=503), body)
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0  # full jitter under 0.5 * 2**n


def test_400_is_not_retried() -> None:
    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url))
        outcomes = await d.send(paging(FIRING))
        await d.close()
        assert [(o.result, o.attempts) for o in outcomes] == [("failed", 1)]
        assert "HTTP 400" in outcomes[0].reason and "receiver says no" in outcomes[0].reason
        assert len(receiver.requests) == 1
        assert d.undelivered == []

    run(Receiver(fail_first=5, fail_status=400), body)


def test_429_is_retried_until_attempts_run_out_then_kept_for_the_next_send() -> None:
    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url))
        first = await d.send(paging(FIRING))
        assert [(o.result, o.attempts) for o in first] == [("failed", 4)]
        assert d.undelivered == [FIRING]
        again = await d.send([])  # the receiver recovered: the kept page goes out now
        await d.close()
        assert [(o.result, o.attempts) for o in again] == [("delivered", 1)]
        assert len(receiver.requests) == 5

    run(Receiver(fail_first=4, fail_status=429), body)


def test_connection_refused_is_retryable() -> None:
    async def body() -> None:
        d = dispatcher(WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook"))
        outcomes = await d.send(paging(FIRING))
        await d.close()
        assert outcomes[0].result == "failed" and outcomes[0].attempts == 4
        assert d.undelivered == [FIRING]

    asyncio.run(body())


def test_same_event_twice_and_after_a_restart_is_one_delivery(tmp_path: Path) -> None:
    log_file = tmp_path / "nflog.json"

    async def body(receiver: Receiver) -> None:
        nflog = Nflog(ManualClock(T0))
        d = dispatcher(WebhookNotifier(receiver.url), nflog)
        assert [o.result for o in await d.send(paging(FIRING))] == ["delivered"]
        assert [o.result for o in await d.send(paging(FIRING))] == ["skipped"]
        nflog.save(log_file)
        await d.close()
        # A restarted worker replays the same event: its restored nflog stops the second page.
        restarted_log = Nflog(ManualClock(T0))
        restarted_log.load(log_file)
        d2 = dispatcher(WebhookNotifier(receiver.url), restarted_log)
        assert [o.result for o in await d2.send(paging(FIRING))] == ["skipped"]
        assert [o.result for o in await d2.send(paging(RESOLVED, RESOLVED))] == ["delivered", "skipped"]
        await d2.close()
        assert [r.body["status"] for r in receiver.requests] == ["firing", "resolved"]

    run(Receiver(), body)


def test_renotify_is_a_new_page_with_its_own_key() -> None:
    renotify = Alert(
        **{**{f: getattr(FIRING, f) for f in FIRING.__struct_fields__}, "event_ts": FIRING.event_ts + 3_600_000}
    )

    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url))
        results = [o.result for o in await d.send(paging(FIRING, renotify))]
        await d.close()
        assert results == ["delivered", "delivered"]
        keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
        assert keys == [f"{FIRING.fingerprint}-firing-{T0}", f"{FIRING.fingerprint}-firing-{T0}-{renotify.event_ts}"]

    run(Receiver(), body)


def test_silenced_firing_is_not_sent_and_neither_is_its_resolved() -> None:
    # The stage applies silences (on its event-time clock); the dispatcher keeps to its verdict.
    stage = AlertStage(AlertingPolicy())
    stage.engine.silences.add(["region=~eu-.*"], starts_at_ms=T0, ends_at_ms=T0 + 3_600_000,
                              comment="planned maintenance")
    events = [e for window in range(9) for e in stage.step([decision("room-17", window, window < 2)])]
    assert [e.alert.status for e in events] == ["firing", "resolved"]

    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url))
        outcomes = await d.send(events)
        await d.close()
        assert [o.result for o in outcomes] == ["muted", "skipped"]
        assert outcomes[0].reason.endswith("(planned maintenance)")
        assert receiver.requests == []

    run(Receiver(), body)


def test_a_muted_event_is_not_sent_whatever_muted_it() -> None:
    async def body(receiver: Receiver) -> None:
        d = dispatcher(WebhookNotifier(receiver.url))
        outcomes = await d.send([Emitted(FIRING, muted="inhibited by cluster incident eu-west (f00)")])
        await d.close()
        assert [(o.result, o.reason) for o in outcomes] == [("muted", "inhibited by cluster incident eu-west (f00)")]
        assert receiver.requests == [] and d.undelivered == []

    run(Receiver(), body)


def test_slack_and_pagerduty_payloads_reach_the_receiver() -> None:
    async def body(receiver: Receiver) -> None:
        d = Dispatcher(
            [SlackNotifier(receiver.url + "/slack"), PagerDutyNotifier("R0UTING", url=receiver.url + "/v2/enqueue")],
            Nflog(ManualClock(T0)),
        )
        outcomes = await d.send(paging(FIRING, RESOLVED))
        await d.close()
        assert sorted((o.receiver, o.status, o.result) for o in outcomes) == [
            ("pagerduty", "firing", "delivered"),
            ("pagerduty", "resolved", "delivered"),
            ("slack", "firing", "delivered"),
            ("slack", "resolved", "delivered"),
        ]
        slack = [r.body for r in receiver.requests if r.path == "/slack"]
        assert slack[0]["text"].startswith(":rotating_light: [FIRING critical] room-17: details_not_available")
        assert slack[1]["text"].startswith(":white_check_mark: [RESOLVED critical]")
        assert slack[0]["blocks"][0]["type"] == "section"
        pd = [r.body for r in receiver.requests if r.path == "/v2/enqueue"]
        assert [(b["event_action"], b["dedup_key"], b["routing_key"]) for b in pd] == [
            ("trigger", FIRING.fingerprint, "R0UTING"),
            ("resolve", FIRING.fingerprint, "R0UTING"),
        ]
        assert pd[0]["payload"]["severity"] == "critical"
        assert pd[0]["payload"]["source"] == "outagewatch/room/room-17"
        assert pd[0]["payload"]["summary"] == FIRING.summary
        assert pd[0]["payload"]["custom_details"]["labels"] == {"region": "eu-west"}

    run(Receiver(), body)


def test_stage_and_dispatcher_page_once_for_a_regional_outage() -> None:
    """Eight rooms of one region go bad: one cluster page; the room alerts are recorded, not paged."""
    stage = AlertStage(AlertingPolicy())

    async def body(receiver: Receiver) -> None:
        d = Dispatcher([WebhookNotifier(receiver.url)], Nflog(stage.clock))
        events = []
        for i in range(3):
            batch = stage.step([decision(f"room-{r}", i, r < 8) for r in range(20)])
            events += batch
            await d.send(batch)
        await d.close()
        assert sum(e.alert.scope == "room" for e in events) == 8  # recorded for the alerts topic
        assert [(r.body["scope"], r.body["key"]) for r in receiver.requests] == [("cluster", "eu-west")]

    run(Receiver(), body)
