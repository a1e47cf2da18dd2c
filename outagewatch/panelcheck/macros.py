"""Expand a panel's SQL the way Grafana and the ClickHouse plugin do.

No Grafana runs here, so the tests prove every panel query by expanding it
exactly as a user's Grafana would, then running it on real ClickHouse. The
order is the plugin's:

1. the plugin frontend replaces ``$__conditionalAll(cond, $v)`` by ``1=1``
   when ``$v`` is All (``$__all``) or empty, else by ``cond``;
2. Grafana's template service replaces variables (``$v``, ``${v}``); the
   plugin formats a multi-value as ``'a','b'`` and a single value as is;
3. the plugin backend (sqlds) expands ``$__timeFilter(c)``, ``$__fromTime``,
   ``$__toTime`` and ``$__interval_s`` from the query's time range and
   interval, with whole epoch seconds.

>>> r = TimeRange(1795320000, 1795323600)
>>> expand("SELECT 1 WHERE $__timeFilter(ts) AND $__conditionalAll(k IN ($k), $k)", r, 30, {"k": ["a", "b"]})
"SELECT 1 WHERE ts >= toDateTime(1795320000) AND ts <= toDateTime(1795323600) AND k IN ('a','b')"
>>> expand("SELECT $__interval_s, $__fromTime WHERE $__conditionalAll(k IN ($k), $k)", r, 30, {"k": ALL})
'SELECT 30, toDateTime(1795320000) WHERE 1=1'
>>> grafana_interval_seconds(15 * 60), grafana_interval_seconds(6 * 3600), grafana_interval_seconds(7 * 86400)
(10, 20, 600)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALL = "$__all"
VariableValue = str | Sequence[str]

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class TimeRange:
    """A dashboard time range in epoch seconds (Grafana sends milliseconds; the plugin truncates)."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Split the arguments of a macro call at top-level commas; returns them and the closing index."""
    depth = 0
    args: list[str] = []
    current: list[str] = []
    for index in range(open_paren, len(sql)):
        char = sql[index]
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current))
                return args, index
        elif char == "," and depth == 1:
            args.append("".join(current))
            current = []
            continue
        current.append(char)
    raise ValueError(f"unbalanced parentheses in macro call at offset {open_paren}: {sql[open_paren:open_paren + 60]!r}")


def apply_conditional_all(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """The plugin frontend's ``applyConditionalAll``: last occurrence first, as it does."""
    macro = "$__conditionalAll("
    index = sql.rfind(macro)
    while index != -1:
        args, close = _macro_args(sql, index + len(macro) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        name = args[1].strip().lstrip("$").strip("{}")
        value = variables.get(name, "")
        joined = ",".join(value) if not isinstance(value, str) else value
        phrase = "1=1" if joined in ("", ALL) else args[0]
        sql = sql[:index] + phrase + sql[close + 1:]
        index = sql.rfind(macro)
    return sql


def _format_value(value: VariableValue) -> str:
    """The plugin's ``format``: arrays become a quoted list, single values go in as they are."""
    if isinstance(value, str):
        return value
    return "'" + "','".join(value) + "'"


def interpolate_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Grafana's template service; ``$__`` names are left for the backend macros."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.startswith("__") or name not in variables:
            return match.group(0)
        return _format_value(variables[name])

    return _VARIABLE.sub(replace, sql)


def expand_backend_macros(sql: str, time_range: TimeRange, interval_seconds: int) -> str:
    """The plugin backend's macros (``pkg/macros``): whole seconds, ``toDateTime(<s>)``."""
    start, end = f"toDateTime({time_range.start})", f"toDateTime({time_range.end})"
    macro = "$__timeFilter("
    index = sql.find(macro)
    while index != -1:
        args, close = _macro_args(sql, index + len(macro) - 1)
        if len(args) != 1:
            raise ValueError(f"$__timeFilter takes 1 argument, got {len(args)}")
        column = args[0].strip()
        sql = sql[:index] + f"{column} >= {start} AND {column} <= {end}" + sql[close + 1:]
        index = sql.find(macro)
    if "$__timeInterval" in sql:
        # Expands to toStartOfInterval, which ClickHouse 18.16 lacks.
        raise ValueError("$__timeInterval is not allowed: bucket with intDiv(toUInt32(c), $__interval_s)")
    sql = sql.replace("$__fromTime", start).replace("$__toTime", end)
    sql = sql.replace("$__interval_s", str(max(int(interval_seconds), 1)))
    leftover = re.search(r"\$__\w+", sql)
    if leftover:
        raise ValueError(f"unexpanded macro {leftover.group(0)} in query")
    return sql


def expand(sql: str, time_range: TimeRange, interval_seconds: int,
           variables: Mapping[str, VariableValue] | None = None) -> str:
    """All three steps, in the order Grafana and the plugin apply them."""
    variables = variables or {}
    sql = apply_conditional_all(sql, variables)
    sql = interpolate_variables(sql, variables)
    leftover = _VARIABLE.search(sql.replace("$__", "\0"))
    if leftover:
        raise ValueError(f"template variable {leftover.group(0)} has no value")
    return expand_backend_macros(sql, time_range, interval_seconds)


# Grafana's rangeutil.roundInterval: the interval it picks for (to - from) / max data points.
_ROUNDING: tuple[tuple[float, int], ...] = (
    (0.015, 1), (0.035, 1), (0.075, 1), (0.15, 1), (0.35, 1), (0.75, 1), (1.5, 1), (3.5, 2), (7.5, 5),
    (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300), (750, 600),
    (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800),
    (32400, 21600), (86400, 43200), (604800, 86400), (1814400, 604800), (3628800, 2592000),
)


def grafana_interval_seconds(range_seconds: int, max_data_points: int = 1000, min_interval: int = 10) -> int:
    """``$__interval`` in seconds for a panel ``max_data_points`` wide with a minimum interval."""
    raw = range_seconds / max_data_points
    rounded = 31536000
    for threshold, value in _ROUNDING:
        if raw < threshold:
            rounded = value
            break
    return max(rounded, min_interval, 1)
