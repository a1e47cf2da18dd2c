"""Printing the demo summary for a person."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(summary: dict[str, Any]) -> None:
    console = Console()
    reports, alerts = summary["reports"], summary["alerts"]
    console.rule(f"[bold]outagewatch demo: {summary['scenario']}[/] ({summary['wall_seconds']:.0f}s)")
    console.print(
        f"reports: {reports['sent']:,} sent, {reports['accepted']:,} accepted by the collector "
        f"({reports['sampled_out']:,} sampled out under load, stood for by the weights of those kept), {reports['stored']:,} stored in ClickHouse, "
        f"[{'red' if reports['lost'] else 'green'}]{reports['lost']:,} lost[/]")
    console.print(f"alerts: {alerts['firing_events']} firing and {alerts['resolved_events']} resolved events "
                  f"{alerts['by_scope']}; {alerts['notifications_received']} notifications reached the webhook")
    table = Table(title="incidents against the ground truth")
    for column in ("incident", "scope", "key", "kind", "detected", "delay", "by alert"):
        table.add_column(column)
    for row in summary["incidents"]:
        table.add_row(row["id"], row["scope"], row["key"], row["kind"],
                      "[green]yes[/]" if row["detected"] else "[red]no[/]",
                      f"{row['delay_s']:.0f}s" if row["delay_s"] is not None else "-", row["by"] or "-")
    console.print(table)
    console.print("[bold]where to look next[/]")
    for what, where in summary["where_to_look"].items():
        console.print(f"  {what}: {where}")
