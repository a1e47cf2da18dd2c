"""Named analyst queries: the questions people ask after an incident.

Each is plain SQL with driver-bound parameters (``%(name)s``), runs on
ClickHouse 18.16 and current ClickHouse (tests run every one on both), and
sees each row once (``FINAL`` or rollup ``-Merge``) even after an
at-least-once replay. Times are bound as epoch seconds.

>>> sorted(NAMED_QUERIES)
['alert_history', 'error_codes', 'incident_timeline', 'room_rollup', 'top_rooms']
>>> epoch_seconds("2026-11-22T05:00:00Z"), epoch_seconds(1795323600000), epoch_seconds(1795323600)
(1795323600, 1795323600, 1795323600)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.schemas import ERROR_CODES
from core.timeutil import parse_event_time


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str
    params: tuple[str, ...]


_PER_CODE = ",\n    ".join(f"errors_{code}" for code in ERROR_CODES)
# Aliases differ from the column names: ClickHouse 18.16 resolves an alias
# equal to a column name inside the aggregate ("sum(x) AS x" nests).
_ROLLUP_PER_CODE = ",\n    ".join(f"sumMerge(errors_{code}) AS {code}" for code in ERROR_CODES)

NAMED_QUERIES: dict[str, NamedQuery] = {q.name: q for q in (
    NamedQuery(
        "incident_timeline",
        "every closed window of one room in a time range: listeners, errors by code, latency",
        f"""SELECT
    window_start, window_end, listeners, joins, leaves, reports, errors, error_ratio, error_clients,
    {_PER_CODE},
    latency_p50_ms, latency_p99_ms, late_reports
FROM room_health FINAL
WHERE scope = 'room' AND key = %(room_id)s
  AND window_start >= toDateTime(%(start)s) AND window_start < toDateTime(%(end)s)
ORDER BY window_start""",
        ("room_id", "start", "end"),
    ),
    NamedQuery(
        "top_rooms",
        "rooms with the most distinct error clients in a range, with peak listeners",
        """SELECT
    key AS room_id,
    sum(error_clients) AS total_error_clients,
    sum(errors) AS total_errors,
    max(listeners) AS peak_listeners,
    if(sum(listeners) > 0, sum(errors) / sum(listeners), 0) AS overall_error_ratio
FROM room_health FINAL
WHERE scope = 'room'
  AND window_start >= toDateTime(%(start)s) AND window_start < toDateTime(%(end)s)
GROUP BY key
ORDER BY total_error_clients DESC, room_id
LIMIT %(limit)s""",
        ("start", "end", "limit"),
    ),
    NamedQuery(
        "alert_history",
        "alert state changes in a range (optionally for one key), newest first",
        """SELECT
    event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at,
    if(status = 'resolved' AND ends_at > starts_at, toUInt32(ends_at) - toUInt32(starts_at), 0) AS duration_s,
    summary, affected
FROM alerts FINAL
WHERE event_ts >= toDateTime(%(start)s) AND event_ts < toDateTime(%(end)s)
  AND (%(key)s = '' OR key = %(key)s)
ORDER BY event_ts DESC, fingerprint""",
        ("start", "end", "key"),
    ),
    NamedQuery(
        "room_rollup",
        "one room per minute from the 1-minute rollup: peak and average listeners, sums of errors",
        f"""SELECT
    bucket,
    maxMerge(listeners_max) AS peak_listeners,
    avgMerge(listeners_avg) AS avg_listeners,
    countMerge(windows) AS window_count,
    sumMerge(reports) AS total_reports,
    sumMerge(errors) AS total_errors,
    sumMerge(error_clients) AS total_error_clients,
    {_ROLLUP_PER_CODE}
FROM room_health_1m
WHERE scope = %(scope)s AND key = %(key)s
  AND bucket >= toDateTime(%(start)s) AND bucket < toDateTime(%(end)s)
GROUP BY bucket
ORDER BY bucket""",
        ("scope", "key", "start", "end"),
    ),
    NamedQuery(
        "error_codes",
        "raw reports of one room by error code and platform in a range (weighted, each report once)",
        """SELECT
    error_code,
    platform,
    sum(weight) AS weighted_reports,
    uniqExact(client_id) AS clients
FROM reports FINAL
WHERE room_id = %(room_id)s AND kind = 'error'
  AND ts >= toDateTime(%(start)s) AND ts < toDateTime(%(end)s)
GROUP BY error_code, platform
ORDER BY weighted_reports DESC, error_code, platform""",
        ("room_id", "start", "end"),
    ),
)}


def epoch_seconds(value: datetime | str | int | float) -> int:
    """Epoch seconds from a datetime (naive = UTC), RFC 3339, epoch ms or epoch s."""
    if isinstance(value, datetime):
        if value.tzinfo is None:

            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    if isinstance(value, (int, float)) and value < 100_000_000_000:
        return int(value)
    return parse_event_time(value) // 1000
