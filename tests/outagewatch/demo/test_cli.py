"""The README's first command, short: `outagewatch demo --smoke` on the real stack, time-compressed.

The last five minutes of the launch-night warm-up and the first twelve of the
story go through the collector, the worker and the sink, as fast as they can:
everything accepted must be in ClickHouse, and the launch room's overload must
page through the webhook within a minute of event time. A negative story (one
client spamming errors) goes through the same way and must raise no alert.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(600)
def test_demo_smoke_stores_everything_it_accepts_and_pages_the_launch_room(stack: dict[str, Any]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "outagewatch", "demo", "--smoke", "--json", "--scale", "0.005",
         "--warmup-minutes", "5", "--duration", str(45 * 60 + 12 * 60)],
        capture_output=True, text=True, timeout=580, env=os.environ.copy(),
    )
    assert result.returncode == 0, f"demo failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    summary = json.loads(result.stdout)
    reports = summary["reports"]
    assert reports["sent"] > 20_000
    assert reports["accepted"] == reports["sent"]
    assert reports["stored"] == reports["accepted"] - reports["sampled_out"]
    assert reports["lost"] == 0
    launch = next(i for i in summary["incidents"] if i["scope"] == "room" and i["key"] == "launch-1")
    assert launch["detected"] and launch["delay_s"] <= 60, launch
    assert summary["alerts"]["notifications_received"] >= 1
    assert summary["where_to_look"]["alert_notifications"].endswith("alerts-received.ndjson")


@pytest.mark.timeout(600)
def test_demo_smoke_of_a_spamming_client_raises_no_alert(stack: dict[str, Any]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "outagewatch", "demo", "--smoke", "--json", "--scenario", "spammer", "--scale", "0.005",
         "--warmup-minutes", "5", "--duration", str(45 * 60 + 10 * 60)],
        capture_output=True, text=True, timeout=580, env=os.environ.copy(),
    )
    assert result.returncode == 0, f"demo failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    summary = json.loads(result.stdout)
    assert summary["incidents"] == []
    assert summary["reports"]["stored"] == summary["reports"]["accepted"] - summary["reports"]["sampled_out"] > 10_000
    assert summary["alerts"]["firing_events"] == 0 and summary["alerts"]["notifications_received"] == 0
