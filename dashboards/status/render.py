"""The status page as HTML, rendered on the server: no JavaScript, charts as inline SVG.

Every value that came from data (component keys, notes) is escaped.

>>> from dashboards.status.model import Snapshot
>>> page = render_page(Snapshot(as_of=0, components=(), incidents=()), "Status <x>", stale=False, reason="")
>>> 'id="banner" data-indicator="none"' in page, "Status &lt;x&gt;" in page
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from dashboards.status.model import (
    INDICATOR_DESCRIPTIONS,
    Component,
    Incident,
    SeriesPoint,
    Snapshot,
)

# The banner's colour per indicator (Statuspage's palette); the Chromium test reads these pixels.
INDICATOR_COLOURS: dict[str, str] = {"none": "#2fcc66", "minor": "#f1c40f", "major": "#e67e22", "critical": "#e74c3c"}
STATUS_COLOURS: dict[str, str] = {"operational": "#2fcc66", "degraded_performance": "#f1c40f",
                                  "partial_outage": "#e67e22", "major_outage": "#e74c3c"}
UNAVAILABLE_COLOUR = "#7f8c8d"
STATUS_LABELS: dict[str, str] = {"operational": "Operational", "degraded_performance": "Degraded performance",
                                 "partial_outage": "Partial outage", "major_outage": "Major outage"}
CHART_WIDTH, CHART_HEIGHT = 600, 80
# Two chart buckets (15 min) behind the page's read.
DATA_DELAYED_SECONDS = 1800

_STYLE = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;
background:#f6f7f9}main{max-width:960px;margin:0 auto;padding:0 12px 40px}h1{font-size:22px;margin:20px 0 12px}
h2{font-size:18px;margin:28px 0 10px}#banner{color:#fff;padding:18px 16px;font-size:20px;font-weight:600;
border-radius:6px}.stale{background:#fff3cd;border:1px solid #e0c36c;padding:8px 12px;border-radius:6px;margin:10px 0}
.asof{color:#666;font-size:13px;margin:6px 0}.component{background:#fff;border:1px solid #e3e5e8;border-radius:6px;
padding:10px 12px;margin:8px 0}.component header{display:flex;justify-content:space-between;gap:8px;flex-wrap:wrap}
.component .name{font-weight:600}.status{font-weight:600}svg{width:100%;height:auto;display:block;margin-top:6px}
.top{color:#555;font-size:13px}.incident{background:#fff;border-left:5px solid #e67e22;padding:10px 12px;margin:8px 0;
border-radius:4px}.incident.resolved{border-left-color:#2fcc66}.incident ol{margin:6px 0;padding-left:18px}
.incident time,.history time{color:#666;font-size:13px}.history li{margin:4px 0}
"""


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def sparkline(points: Sequence[SeriesPoint], start: int, end: int) -> str:
    """Observed (filled) against the learned baseline (dashed) over ``[start, end]``, as SVG.

    >>> svg = sparkline([SeriesPoint(0, 1.0, 1.0), SeriesPoint(900, 4.0, 1.0)], 0, 900)
    >>> svg.count("<polyline"), 'class="observed"' in svg
    (2, True)
    """
    label = "error reports in the last 24 hours against the usual level"
    if not points:
        return (f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="no data: {label}">'
                f'<text x="8" y="{CHART_HEIGHT // 2}" fill="#999" font-size="13">no reports in the last 24 hours'
                "</text></svg>")
    top = max(max(p.observed, p.baseline) for p in points) or 1.0
    span = max(end - start, 1)

    def xy(at: int, value: float) -> str:
        x = (at - start) / span * CHART_WIDTH
        y = CHART_HEIGHT - 4 - value / top * (CHART_HEIGHT - 8)
        return f"{x:.1f},{y:.1f}"

    observed = " ".join(xy(p.at, p.observed) for p in points)
    baseline = " ".join(xy(p.at, p.baseline) for p in points)
    area = f"{xy(points[0].at, 0)} {observed} {xy(points[-1].at, 0)}"
    return (f'<svg viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{label}">'
            f'<polygon points="{area}" fill="#3498db" fill-opacity="0.18"/>'
            f'<polyline class="observed" points="{observed}" fill="none" stroke="#2980b9" stroke-width="1.5"/>'
            f'<polyline class="baseline" points="{baseline}" fill="none" stroke="#7f8c8d" stroke-width="1" '
            'stroke-dasharray="4 3"/></svg>')


def _component(component: Component, start: int, end: int) -> str:
    colour = STATUS_COLOURS[component.status]
    top = ", ".join(f"{escape(code.replace('_', ' '))} ({count:,.0f})" for code, count in component.top_errors)
    return (f'<section class="component" id="component-{component.ref.id}" data-status="{component.status}">'
            f'<header><span class="name">{escape(component.name)}</span>'
            f'<span class="status" style="color:{colour}">{STATUS_LABELS[component.status]}</span></header>'
            f"{sparkline(component.series, start, end)}"
            + (f'<div class="top">Top problems (24 h): {top}</div>' if top else "")
            + "</section>")


def _incident(incident: Incident) -> str:
    steps = "".join(f"<li><b>{escape(u.kind.capitalize())}</b> <time>{iso(u.at)}</time> {escape(u.body)}</li>"
                    for u in incident.updates)
    state = "resolved" if not incident.open else "open"
    return (f'<article class="incident {state}" id="incident-{escape(incident.id)}" data-state="{state}">'
            f"<b>{escape(incident.name)}</b> <span>({escape(incident.status)}, impact {incident.impact})</span>"
            f"<ol>{steps}</ol></article>")


def _history(incidents: Sequence[Incident]) -> str:
    if not incidents:
        return "<p>No incidents in this period.</p>"
    items = "".join(
        f'<li><a href="#incident-{escape(i.id)}">{escape(i.name)}</a> <time>{iso(i.started_at)}</time>'
        f" to <time>{iso(i.resolved_at) if i.resolved_at else 'ongoing'}</time></li>" for i in incidents)
    return f'<ul class="history">{items}</ul>'


def render_page(snapshot: Snapshot | None, title: str, stale: bool, reason: str, history_days: int = 90) -> str:
    head = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="alternate" type="application/atom+xml" href="history.atom"><style>{_STYLE}</style></head>'
            f"<body><main><h1>{escape(title)}</h1>")
    if snapshot is None:
        return (head + f'<div id="banner" data-indicator="unknown" style="background:{UNAVAILABLE_COLOUR}">'
                "Status data is not available right now</div>"
                f'<p class="stale" id="stale">{escape(reason or "waiting for the first read")}; this page will '
                "update by itself when it can read again.</p></main></body></html>")
    indicator = snapshot.indicator
    body = [f'<div id="banner" data-indicator="{indicator}" style="background:{INDICATOR_COLOURS[indicator]}">'
            f"{INDICATOR_DESCRIPTIONS[indicator]}</div>",
            f'<p class="asof">Data as of <time id="as-of">{iso(snapshot.as_of)}</time></p>']
    if snapshot.newest_data is None or snapshot.as_of - snapshot.newest_data > DATA_DELAYED_SECONDS:
        # "Operational" is only as good as the data behind it: say when the monitoring itself is behind.
        since = f"the newest is from {iso(snapshot.newest_data)}" if snapshot.newest_data else "none in 24 hours"
        body.append(f'<p class="stale" id="delayed">Monitoring data is delayed ({since}): statuses may not '
                    "reflect the last minutes.</p>")
    if stale:
        body.append(f'<p class="stale" id="stale">Stale: {escape(reason)}. Showing the data as of '
                    f"{iso(snapshot.as_of)}.</p>")
    opened = snapshot.open_incidents
    body.append('<h2>Current incidents</h2><div id="open-incidents">'
                + ("".join(_incident(i) for i in opened) if opened else "<p>No open incidents.</p>") + "</div>")
    body.append('<h2>Components</h2><div id="components">'
                + "".join(_component(c, snapshot.window_start, snapshot.as_of) for c in snapshot.components)
                + "</div>")
    past = [i for i in snapshot.incidents if not i.open]
    body.append(f"<h2>Past incidents ({history_days} days)</h2>" + _history(past)
                + '<div id="resolved-incidents">' + "".join(_incident(i) for i in past) + "</div>")
    body.append('<p class="asof">JSON: <a href="api/v2/summary.json">summary</a> · '
                '<a href="api/v2/incidents.json">incidents</a> · <a href="history.atom">Atom feed</a></p>')
    return head + "".join(body) + "</main></body></html>"
