"""The README's first command, short: `outagewatch demo` on the real stack, time-compressed.

Twenty minutes of the launch-night scenario's normal traffic go through the
collector, the worker and the sink; everything accepted must be in ClickHouse.
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
def test_demo_ingests_and_stores_everything_it_accepts(stack: dict[str, Any]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "outagewatch", "demo", "--json", "--no-view", "--speed", "0", "--scale", "0.005",
         "--duration", "1200"],
        capture_output=True, text=True, timeout=580, env=os.environ.copy(),
    )
    assert result.returncode == 0, f"demo failed:\n{result.stderr[-4000:]}"
    summary = json.loads(result.stdout)
    reports = summary["reports"]
    assert reports["sent"] > 5_000
    assert reports["accepted"] == reports["sent"]
    assert reports["stored"] == reports["accepted"] - reports["sampled_out"]
    assert reports["lost"] == 0
    assert summary["where_to_look"]["alert_notifications"].endswith("alerts-received.ndjson")
