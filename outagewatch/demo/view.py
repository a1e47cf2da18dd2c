"""The live terminal view (rich), and a plain progress line when stdout is not a terminal."""

from __future__ import annotations

import time

from rich.console import Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from core.timeutil import format_ms
from outagewatch.demo.watch import Live, Replay

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def render(replay: Replay, live: Live) -> Group:
    share = replay.done_event_s / replay.total_event_s if replay.total_event_s else 0.0
    elapsed = time.monotonic() - replay.started_wall
    header = Text.assemble(
        ("outagewatch demo ", "bold"), (f"· scenario {replay.scenario} ", "cyan"),
        (f"· event time {format_ms(replay.event_ms)[:19] if replay.event_ms else '-'} ", ""),
        (f"· {elapsed:,.0f}s wall", "dim"),
    )
    bar = Table.grid(expand=True)
    bar.add_column(ratio=1)
    bar.add_column(justify="right")
    bar.add_row(ProgressBar(total=1.0, completed=share), f" {share:6.1%} replayed, {replay.reports_sent:,} reports sent")

    now = Table(title="pipeline", expand=True, show_header=False)
    now.add_column(style="dim")
    now.add_column(justify="right", style="bold")
    now.add_row("listeners (all rooms)", f"{live.listeners:,.0f}")
    now.add_row("reports/s (event time)", f"{live.reports_per_s:,.0f}")
    now.add_row("error ratio", f"{live.error_ratio:.2%}")
    now.add_row("worker lag (messages)", "-" if live.lag is None else f"{live.lag:,}")
    now.add_row("windows seen", f"{live.windows:,}")
    now.add_row("alerts firing", f"{len(live.firing)}")

    trouble = Table(title="rooms in trouble", expand=True)
    for column in ("room", "listeners", "error ratio", "error clients"):
        trouble.add_column(column, justify="right" if column != "room" else "left")
    firing_rooms = {a.key for a in live.firing.values() if a.scope == "room"}
    for affected in (a.affected for a in live.firing.values() if a.scope != "room"):
        firing_rooms.update(affected)
    worst = sorted((w for k, w in live.room_windows.items() if k in firing_rooms),
                   key=lambda w: w.error_ratio, reverse=True)[:8]
    for window in worst:
        trouble.add_row(window.key, f"{window.listeners:,.0f}", f"{window.error_ratio:.1%}", f"{window.error_clients:,.0f}")

    alerts = Table(title="alerts", expand=True)
    for column in ("event time", "status", "scope", "key", "summary"):
        alerts.add_column(column, overflow="fold")
    for alert in live.alerts[-10:]:
        style = "green" if alert.status == "resolved" else _SEVERITY_STYLE.get(alert.severity, "")
        alerts.add_row(format_ms(alert.event_ts)[11:19], Text(alert.status, style=style), alert.scope, alert.key,
                       alert.summary[:90])
    return Group(Panel(Group(header, bar)), now, trouble, alerts)


def progress_line(replay: Replay, live: Live) -> str:
    share = replay.done_event_s / replay.total_event_s if replay.total_event_s else 0.0
    return (f"replayed {share:5.1%} ({replay.reports_sent:,} reports sent), listeners {live.listeners:,.0f}, "
            f"reports/s {live.reports_per_s:,.0f}, lag {live.lag if live.lag is not None else '-'}, "
            f"alerts firing {len(live.firing)}, alert events {len(live.alerts)}")
