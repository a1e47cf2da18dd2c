"""Silences from the CLI: the store, the worker's reload, and a page they mute end to end."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import msgspec
import pytest

from alerting.dispatch import Dispatcher
from alerting.nflog import Nflog
from alerting.notify.webhook import WebhookNotifier
from alerting.policy import AlertingPolicy
from alerting.silence_store import SilenceFile, SilenceStore
from alerting.stage import AlertStage
from core.config import load_settings
from core.schemas import Alert, Decision
from core.timeutil import ManualClock, SystemClock
from outagewatch.cli import main
from tests.alerting.helpers import WINDOW_MS, decision
from tests.alerting.receiver import Receiver


def _alert(key: str) -> Alert:
    return Alert(fingerprint=key, status="firing", scope="room", key=key, kind="crash", severity="critical",
                 starts_at=0, event_ts=0, summary="")


def test_store_adds_lists_and_expires(tmp_path: Path) -> None:
    clock = ManualClock(1_000)
    store = SilenceStore(tmp_path / "s.json", clock)
    first = store.add(["key=room-1"], ends_at_ms=100_000, comment="a")
    second = store.add(["key=~room-[23]"], ends_at_ms=50_000, comment="b", created_by="ops")
    assert [s.id for s in store.listed()] == [second, first]  # soonest to end first
    store.expire(first)
    assert [s.id for s in store.listed()] == [second]
    with pytest.raises(KeyError):
        store.expire("nope")
    clock.advance(60_000)
    assert store.listed() == []
    store.add(["key=room-4"], ends_at_ms=200_000)
    assert len(json.loads((tmp_path / "s.json").read_text())) == 1  # ended silences are collected on write


def test_worker_reloads_on_change_once_per_tick_and_keeps_silences_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    clock = ManualClock(1_000)
    muter = SilenceFile(path, clock)
    assert muter.mutes(_alert("room-1")) is None  # no file yet
    store = SilenceStore(path, clock)
    store.add(["key=room-1"], ends_at_ms=100_000)
    assert muter.mutes(_alert("room-1")) is None  # same tick: not re-read
    clock.advance(WINDOW_MS)
    assert muter.mutes(_alert("room-1")) is not None
    path.write_text("{not json")
    os.utime(path, ns=(1, 1))
    clock.advance(WINDOW_MS)
    assert muter.mutes(_alert("room-1")) is not None  # kept what it had
    path.unlink()
    clock.advance(WINDOW_MS)
    assert muter.mutes(_alert("room-1")) is None


def test_a_silence_added_from_the_cli_mutes_the_page_and_expiring_it_pages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "silences.json"
    monkeypatch.setenv("OUTAGEWATCH_ALERTING_SILENCES_PATH", str(path))
    settings = load_settings()
    stage = AlertStage(AlertingPolicy.from_settings(settings.alerting, live_silences=True))
    assert main(["silence", "add", "--match", "key=room-17", "--match", "kind=crash", "--duration", "1h",
                 "--comment", "CDN maintenance"]) == 0
    silence_id = capsys.readouterr().out.strip()
    assert main(["silence", "list"]) == 0
    assert silence_id in capsys.readouterr().out
    # Live decisions: their window ends are now, as the worker's are.
    start = SystemClock().now_ms() // WINDOW_MS * WINDOW_MS

    def window(w: int) -> list[Decision]:
        return [msgspec.structs.replace(decision(key, 0, True, kind="crash", severity="critical"),
                                        window_start=start + w * WINDOW_MS, window_end=start + (w + 1) * WINDOW_MS)
                for key in ("room-17", "room-18")]

    async def scenario() -> list[str]:
        receiver = await Receiver().start()
        dispatcher = Dispatcher([WebhookNotifier(receiver.url)], Nflog(stage.clock))
        try:
            outcomes = await dispatcher.send(stage.step(window(0)))
            assert {o.result for o in outcomes} == {"delivered", "muted"}
            assert [r.body["key"] for r in receiver.delivered] == ["room-18"]
            muted = [o for o in outcomes if o.result == "muted"]
            assert muted[0].reason == f"silenced by {silence_id} (CDN maintenance)"
            assert main(["silence", "expire", silence_id]) == 0
            # The held page goes out once the room is still bad with no silence for its pending windows.
            for w in (1, 2, 3):
                await dispatcher.send(stage.step(window(w)))
            return [r.body["key"] for r in receiver.delivered]
        finally:
            await dispatcher.close()
            await receiver.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == ["room-18", "room-17"]
    assert main(["silence", "expire", silence_id]) == 1  # already ended: a clear error, exit status 1
