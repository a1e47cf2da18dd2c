"""SQL building blocks shared by the boards.

**Raw windows or rollups, chosen inside the SQL.** A room-health panel is one
query with three branches joined by ``UNION ALL``; each branch carries a
guard on the dashboard's range, ``toUInt32($__toTime) - toUInt32($__fromTime)``,
so exactly one branch returns rows:

- up to 6 h: the raw 10-s windows of ``room_health``, each window read once
  (``argMax(col, inserted_at)`` per window, so a window the stream re-emitted
  with late reports counts in its latest version);
- up to 7 d: ``room_health_1m`` with ``-Merge`` functions, buckets of at
  least 60 s;
- beyond: ``room_health_1h``, buckets of at least an hour.

One panel rather than one per tier because the user picks a time range, not a
table: separate panels would show empty boxes for the other tiers. The
guard is a constant, so ClickHouse (18.16 included) prunes the other
branches before reading (``outagewatch bench dashboards`` reports the rows
read). Rates are normalised per window (``count()`` or ``countMerge``), so a
partly filled bucket at the edge of the range does not dip. Rollups are fed
by a materialized view per insert, so a re-emitted window is counted twice
there; ratios (error ratio, rates per window) are unaffected, absolute sums
over long ranges can be high by the share of re-emitted windows.

Time buckets use ``intDiv(toUInt32(c), $__interval_s) * $__interval_s``:
``$__timeInterval`` expands to ``toStartOfInterval``, which 18.16 lacks.

>>> print(bucket("window_start"))
toDateTime(intDiv(toUInt32(window_start), $__interval_s) * $__interval_s)
>>> print(bucket("bucket", minimum=60))
toDateTime(intDiv(toUInt32(bucket), greatest($__interval_s, 60)) * greatest($__interval_s, 60))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RANGE_SECONDS = "(toUInt32($__toTime) - toUInt32($__fromTime))"
RAW_MAX_SECONDS = 6 * 3600
MINUTE_ROLLUP_MAX_SECONDS = 7 * 86400


def bucket(column: str, minimum: int = 0) -> str:
    step = f"greatest($__interval_s, {minimum})" if minimum else "$__interval_s"
    return f"toDateTime(intDiv(toUInt32({column}), {step}) * {step})"


@dataclass(frozen=True)
class Measure:
    """One output column of a room-health series, in both forms.

    ``raw`` aggregates deduplicated window columns, ``rollup`` the
    AggregatingMergeTree states; both must return Float64.
    """

    name: str
    raw: str
    rollup: str
    columns: tuple[str, ...]


def per_window(column: str, window_seconds: int, per_second: bool = True, name: str = "") -> Measure:
    """A sum as a rate per second (or per window) that partial buckets do not distort.

    Output names never equal a column name: ClickHouse resolves aliases
    before columns, so ``sum(x) AS x`` next to ``max(x)`` would nest aggregates.
    """
    divisor = f" * {window_seconds}" if per_second else ""
    return Measure(
        name=name or (f"{column}_per_s" if per_second else f"{column}_per_window"),
        raw=f"sum({column}) / (count(){divisor})",
        rollup=f"sumMerge({column}) / (countMerge(windows){divisor})",
        columns=(column,),
    )


LISTENERS = Measure("avg_listeners", "avg(listeners)", "avgMerge(listeners_avg)", ("listeners",))
PEAK_LISTENERS = Measure("peak_listeners", "max(listeners)", "maxMerge(listeners_max)", ("listeners",))
ERROR_RATIO = Measure("errors_per_report", "sum(errors) / greatest(sum(reports), 1)",
                      "sumMerge(errors) / greatest(sumMerge(reports), 1)", ("errors", "reports"))


def room_health_series(measures: Sequence[Measure], where: str, labels: Sequence[str] = (),
                       label_aliases: Sequence[str] = ()) -> str:
    """A time series over room_health, raw or rollup by range (see the module docstring).

    ``where`` filters ``scope``/``key`` (columns both tables share); ``labels``
    are extra group-by columns (e.g. ``key``), shown as ``label_aliases``.
    """
    aliases = list(label_aliases) or list(labels)
    label_select = "".join(f", {label} AS {alias}" for label, alias in zip(labels, aliases, strict=True))
    label_group = "".join(f", {alias}" for alias in aliases)
    raw_columns = sorted({column for m in measures for column in m.columns})
    dedup = ", ".join(f"argMax({c}, inserted_at) AS {c}" for c in raw_columns)
    raw_values = ", ".join(f"toFloat64({m.raw}) AS {m.name}" for m in measures)
    rollup_values = ", ".join(f"toFloat64({m.rollup}) AS {m.name}" for m in measures)
    names = ", ".join(m.name for m in measures)
    tiers = [
        (f"{RANGE_SECONDS} <= {RAW_MAX_SECONDS}",
         f"""SELECT {bucket("window_start")} AS time{label_select}, {raw_values}
    FROM (
        SELECT scope, key, window_start, {dedup}
        FROM room_health
        WHERE {where} AND $__timeFilter(window_start) AND {RANGE_SECONDS} <= {RAW_MAX_SECONDS}
        GROUP BY scope, key, window_start
    )
    GROUP BY time{label_group}"""),
        ("minute rollup",
         f"""SELECT {bucket("bucket", 60)} AS time{label_select}, {rollup_values}
    FROM room_health_1m
    WHERE {where} AND $__timeFilter(bucket)
        AND {RANGE_SECONDS} > {RAW_MAX_SECONDS} AND {RANGE_SECONDS} <= {MINUTE_ROLLUP_MAX_SECONDS}
    GROUP BY time{label_group}"""),
        ("hour rollup",
         f"""SELECT {bucket("bucket", 3600)} AS time{label_select}, {rollup_values}
    FROM room_health_1h
    WHERE {where} AND $__timeFilter(bucket) AND {RANGE_SECONDS} > {MINUTE_ROLLUP_MAX_SECONDS}
    GROUP BY time{label_group}"""),
    ]
    union = "\n    UNION ALL\n    ".join(sql for _, sql in tiers)
    return f"""SELECT time{label_group}, {names}
FROM (
    {union}
)
ORDER BY time{label_group}"""


def latest_alert_status() -> str:
    """Per fingerprint, its latest status as of the range end; a resolve wins a tie with a fire."""
    return "argMax(status, toUInt64(event_ts) * 2 + (status = 'resolved'))"
