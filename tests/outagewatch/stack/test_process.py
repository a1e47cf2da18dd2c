"""Readiness waits say why a component is not ready (unit tests; no services)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from outagewatch.stack.process import ManagedProcess, NotReady, StackError, wait_until


def _never(reason: str):  # type: ignore[no-untyped-def]
    def check() -> bool:
        raise NotReady(reason)
    return check


def test_a_timeout_names_the_last_reason_and_shows_the_service_log(tmp_path: Path) -> None:
    service_log = tmp_path / "service.log"
    service_log.write_text("line 1\nWaiting for the controller quorum\n")
    process = ManagedProcess("sleeper", tmp_path, tmp_path / "stdout.log", service_log=service_log)
    process.start([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(StackError) as raised:
            wait_until(_never("nothing listens on 127.0.0.1:1 yet"), 0.3, "the sleeper", process, interval=0.05)
    finally:
        process.stop(timeout=5)
    message = str(raised.value)
    assert "last: nothing listens on 127.0.0.1:1 yet" in message
    assert str(service_log) in message
    assert "Waiting for the controller quorum" in message


def test_progress_is_logged_while_waiting(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="outagewatch.stack.process")
    with pytest.raises(StackError):
        wait_until(_never("port closed"), 0.3, "the thing", interval=0.02, progress_every=0.1)
    progress = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert progress and all("the thing" in line and "port closed" in line for line in progress)


def test_an_unexpected_error_is_reported_with_its_type() -> None:
    def check() -> bool:
        raise ConnectionRefusedError("refused")

    with pytest.raises(StackError, match="last: ConnectionRefusedError: refused"):
        wait_until(check, 0.1, "the thing", interval=0.02)


def test_a_process_that_dies_during_start_up_fails_at_once(tmp_path: Path) -> None:
    process = ManagedProcess("quitter", tmp_path, tmp_path / "stdout.log")
    process.start([sys.executable, "-c", "print('bad config: no such port'); raise SystemExit(3)"])
    with pytest.raises(StackError, match="exited during start-up") as raised:
        wait_until(_never("starting"), 30, "the quitter", process, interval=0.05)
    assert "bad config: no such port" in str(raised.value)
