"""The status page in Debian's headless Chromium: it renders, shows an incident while one is open and clears
when it resolves; phone (390 px) and desktop (1280 px) screenshots show the banner in the status colour."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.config import Settings
from dashboards.status.render import INDICATOR_COLOURS
from tests.dashboards.status.browser import dump_dom, hex_colour, screenshot
from tests.dashboards.status.statuskit import (
    FINGERPRINT,
    SeededHistory,
    alert_event,
    execute,
    page_settings,
    serving,
)

PHONE, DESKTOP = 390, 1280


def banner_rows(image_path: Path, width: int, indicator: str, url: str) -> int:
    image = screenshot(url, image_path, width)
    assert image.width == width
    rows = image.rows_of(hex_colour(INDICATOR_COLOURS[indicator]), min_share=0.6)
    return len(rows)


@pytest.mark.integration
def test_page_shows_an_open_incident_and_clears_when_it_resolves(
        seeded_history: SeededHistory, settings: Settings, tmp_path: Path) -> None:
    target, now = seeded_history.target, seeded_history.now
    start = now - 300
    execute(target, alert_event(now, FINGERPRINT, "firing", "cluster", "eu-west", "correlated", "critical",
                                start, start + 10))
    print(f"\nstatus page screenshots: {tmp_path}")
    with serving(page_settings(settings, target, cache_seconds=0.5)) as server:
        url = server.url + "/"
        dom = dump_dom(url)
        assert 'id="banner" data-indicator="critical"' in dom
        assert "Major Service Outage" in dom
        open_part = dom.split('id="open-incidents"')[1].split('id="components"')[0]
        assert f'id="incident-{FINGERPRINT}-{start}"' in open_part and "Widespread problems: region eu-west" in open_part
        assert 'data-status="major_outage"' in dom and "Launch night" in dom
        assert "internal:" not in dom  # the alert's own summary stays private
        # A banner at least 40 px tall in the outage colour, across most of the width, at both widths.
        for width in (PHONE, DESKTOP):
            assert banner_rows(tmp_path / f"open-{width}.png", width, "critical", url) >= 40

        execute(target, alert_event(now, FINGERPRINT, "resolved", "cluster", "eu-west", "correlated",
                                    "critical", start, start + 120))
        time.sleep(0.6)  # one cache period
        dom = dump_dom(url)
        assert 'id="banner" data-indicator="none"' in dom and "All Systems Operational" in dom
        assert "No open incidents." in dom
        resolved_part = dom.split('id="resolved-incidents"')[1]
        assert f'id="incident-{FINGERPRINT}-{start}"' in resolved_part
        for width in (PHONE, DESKTOP):
            assert banner_rows(tmp_path / f"resolved-{width}.png", width, "none", url) >= 40
            assert banner_rows(tmp_path / f"resolved-{width}.png", width, "critical", url) == 0
    for name in ("open-390.png", "open-1280.png", "resolved-390.png", "resolved-1280.png"):
        print(f"screenshot: {tmp_path / name}")
