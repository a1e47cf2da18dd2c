"""Keys come from client reports: a hostile region name is text on the page, never markup or a link."""

from __future__ import annotations

import dataclasses

from dashboards.status.api import PageInfo, atom_feed, summary_json
from dashboards.status.model import Component, ComponentRef, SeriesPoint, Snapshot
from dashboards.status.render import render_page

HOSTILE = '"><script>alert(1)</script><a href="javascript:x'


def snapshot() -> Snapshot:
    ref = ComponentRef("region", HOSTILE)
    return Snapshot(as_of=86_400, window_start=0, incidents=(),
                    components=(Component(ref, f"Region {HOSTILE}", "operational",
                                          (SeriesPoint(0, 1.0, 2.0), SeriesPoint(900, 3.0, 2.0)),
                                          (("crash", 5.0),)),))


def test_hostile_keys_are_escaped_everywhere() -> None:
    page = render_page(snapshot(), "status", stale=False, reason="")
    assert "<script>" not in page and "<a href=\"javascript" not in page
    assert "&lt;script&gt;" in page
    assert f'id="component-{ComponentRef("region", HOSTILE).id}"' in page  # an opaque id, not the key
    feed = atom_feed(snapshot(), PageInfo("status", ""))
    assert "<script>" not in feed
    assert summary_json(snapshot(), PageInfo("status", ""))["components"][0]["name"] == f"Region {HOSTILE}"


def test_stale_page_says_so_with_its_time() -> None:
    page = render_page(snapshot(), "status", stale=True, reason="ClickHouse read failed: ServerException")
    assert 'id="stale"' in page and "1970-01-02 00:00 UTC" in page and "ServerException" in page


def test_delayed_monitoring_data_is_said() -> None:
    fresh = render_page(snapshot(), "status", stale=False, reason="")  # newest_data unknown: no data
    assert 'id="delayed"' in fresh and "none in 24 hours" in fresh
    recent = dataclasses.replace(snapshot(), newest_data=86_400 - 900)
    assert 'id="delayed"' not in render_page(recent, "status", stale=False, reason="")
    old = dataclasses.replace(snapshot(), newest_data=86_400 - 7200)
    assert "the newest is from 1970-01-01 22:00 UTC" in render_page(old, "status", stale=False, reason="")
