"""The Alertmanager round trip against the real Debian binary.

The test starts ``prometheus-alertmanager`` on a free port (clustering off,
its own storage dir) with one route to a webhook receiver served by this
test; our ``AlertmanagerNotifier`` posts firing then resolved; we read them
back with ``GET /api/v2/alerts`` and check Alertmanager itself delivered both
notifications to the receiver. A missing binary fails the test.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from alerting.dispatch import Dispatcher
from alerting.identity import fingerprint
from alerting.links import Links
from alerting.nflog import Nflog
from alerting.notify.alertmanager import AlertmanagerNotifier
from alerting.notify.amwebhook import payload as amwebhook_payload
from alerting.stage import Emitted
from core.schemas import Alert, Evidence
from core.timeutil import SystemClock
from outagewatch.stack.packages import ensure_peer
from outagewatch.stack.process import free_port
from tests.alerting.am_receiver import AmMessage
from tests.alerting.receiver import Receiver

CONFIG = """
route:
  receiver: outagewatch-test
  group_by: ['alertname', 'key']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: outagewatch-test
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/am
        send_resolved: true
"""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """(base URL, port of the webhook receiver it notifies)."""
    binary = ensure_peer("prometheus-alertmanager")
    hook_port, port = free_port(), free_port()
    (tmp_path / "alertmanager.yml").write_text(CONFIG.format(hook_port=hook_port))
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()[-2000:]}")
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                return response.status == 200

        _wait(ready, 20, "alertmanager /-/ready")
        yield base, hook_port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def test_alertmanager_round_trip(alertmanager: tuple[str, int]) -> None:
    base, hook_port = alertmanager
    now = SystemClock().now_ms()
    fp = fingerprint("room", "room-17", "details_not_available")
    firing = Alert(
        fingerprint=fp,
        status="firing",
        scope="room",
        key="room-17",
        kind="details_not_available",
        severity="critical",
        starts_at=now - 20_000,
        event_ts=now,
        summary="room-17: details_not_available reports 42x baseline (1,260 clients in 10 s)",
        labels={"region": "eu-west", "app_version": "5.1.0"},
        evidence=[Evidence(detector="volume", observed=1260, baseline=30, score=9.1)],
    )
    resolved = Alert(
        **{
            **{f: getattr(firing, f) for f in firing.__struct_fields__},
            "status": "resolved",
            "event_ts": now + 1_000,
            "ends_at": now,
        }
    )

    def listed() -> list[dict[str, Any]]:
        return [a for a in _get(f"{base}/api/v2/alerts") if a["labels"].get("key") == "room-17"]

    async def scenario() -> None:
        receiver = await Receiver(port=hook_port).start()
        dispatcher = Dispatcher([AlertmanagerNotifier(base)], Nflog(SystemClock()))
        try:
            outcomes = await dispatcher.send([Emitted(firing), Emitted(firing)])  # the duplicate must not reach it twice
            assert [o.result for o in outcomes] == ["delivered", "skipped"]

            alerts = await asyncio.to_thread(_wait, listed, 10, "the alert in GET /api/v2/alerts")
            assert len(alerts) == 1
            got = alerts[0]
            assert got["status"]["state"] == "active"
            assert got["labels"] == {
                "alertname": "details_not_available",
                "scope": "room",
                "key": "room-17",
                "kind": "details_not_available",
                "severity": "critical",
                "region": "eu-west",
                "app_version": "5.1.0",
            }
            assert got["annotations"]["summary"] == firing.summary
            assert got["annotations"]["fingerprint"] == fp
            assert [r["name"] for r in got["receivers"]] == ["outagewatch-test"]

            def notified(status: str) -> list[dict[str, Any]]:
                return [r.body for r in receiver.requests if r.body.get("status") == status]

            fired = await asyncio.to_thread(_wait, lambda: notified("firing"), 15, "Alertmanager's firing webhook")
            assert fired[0]["receiver"] == "outagewatch-test"
            assert fired[0]["alerts"][0]["labels"]["key"] == "room-17"
            assert fired[0]["alerts"][0]["annotations"]["summary"] == firing.summary
            # The links reach the receivers Alertmanager notifies ...
            links = Links(alertmanager_url=base).of(firing)
            sent = fired[0]["alerts"][0]
            assert sent["annotations"]["runbook_url"] == links.runbook
            assert sent["annotations"]["dashboard"] == sent["generatorURL"] == links.board
            # ... and Alertmanager's own webhook is what the receiver model of our v4 payload reads,
            # field for field: the two bodies have the same keys.
            message = msgspec.convert(fired[0], AmMessage)
            assert message.version == "4" and message.firing()[0].labels["key"] == "room-17"
            ours = amwebhook_payload(firing, "outagewatch-test", Links(alertmanager_url=base))
            assert sorted(ours) == sorted(fired[0]) and sorted(ours["alerts"][0]) == sorted(sent)

            outcomes = await dispatcher.send([Emitted(resolved)])
            assert [o.result for o in outcomes] == ["delivered"]
            await asyncio.to_thread(_wait, lambda: not listed() or None, 10, "the alert to leave the active list")
            done = await asyncio.to_thread(_wait, lambda: notified("resolved"), 15, "Alertmanager's resolved webhook")
            assert done[0]["alerts"][0]["status"] == "resolved"
            assert done[0]["alerts"][0]["labels"]["key"] == "room-17"
            assert len(notified("firing")) == 1  # one page for the one firing event
        finally:
            await dispatcher.close()
            await receiver.stop()

    asyncio.run(asyncio.wait_for(scenario(), 50))


def test_alertmanager_rejects_garbage_and_we_do_not_retry(alertmanager: tuple[str, int]) -> None:
    """A 4xx from the real Alertmanager (endsAt before startsAt) is classified not retryable."""
    from alerting.notify.http import HttpPoster

    base, _ = alertmanager
    body = [{"labels": {"alertname": "x"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}]

    async def post() -> None:
        poster = HttpPoster()
        try:
            delivery = await poster.post_json(f"{base}/api/v2/alerts", body)
        finally:
            await poster.close()
        assert not delivery.ok and not delivery.retryable
        assert delivery.reason.startswith("HTTP 400"), delivery.reason

    asyncio.run(post())
