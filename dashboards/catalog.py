"""Every SQL query a built dashboard sends, found by walking its JSON.

Tests and the benchmark use this on the JSON that ships, so what is proven is
exactly what Grafana receives: panel targets (rows' nested panels too),
query variables and annotation queries.

>>> board = {"uid": "b", "panels": [{"type": "stat", "title": "T", "targets": [
...     {"refId": "A", "format": 1, "rawSql": "SELECT 1"}]}], "templating": {"list": []}}
>>> [(q.board, q.panel, q.kind, q.format) for q in queries(board)]
[('b', 'T', 'stat', 1)]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dashboards.grafana import TABLE


@dataclass(frozen=True)
class PanelQuery:
    board: str
    panel: str
    kind: str  # the panel type, or "variable" / "annotation"
    ref_id: str
    format: int
    raw_sql: str
    repeat: str = ""  # the variable a repeated row iterates over

    @property
    def name(self) -> str:
        return f"{self.board}/{self.panel}/{self.ref_id}"


def _panels(board: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str]]:
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            for nested in panel.get("panels", []):
                yield nested, panel.get("repeat") or ""
        else:
            yield panel, ""


def queries(board: Mapping[str, Any]) -> list[PanelQuery]:
    uid = str(board["uid"])
    found: list[PanelQuery] = []
    for panel, repeat in _panels(board):
        for target in panel.get("targets") or []:
            found.append(PanelQuery(uid, str(panel.get("title", "")), str(panel["type"]), str(target["refId"]),
                                    int(target.get("format", TABLE)), str(target["rawSql"]), repeat))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            found.append(PanelQuery(uid, f"${variable['name']}", "variable", "var", TABLE, str(variable["query"])))
    for annotation in board.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            found.append(PanelQuery(uid, str(annotation["name"]), "annotation", str(target.get("refId", "Anno")),
                                    TABLE, str(target["rawSql"])))
    return found
