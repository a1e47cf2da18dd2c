"""The status page's reads from ClickHouse: four queries per refresh, however many components.

Every statement runs on ClickHouse 18.16 and current ClickHouse (the tests
run each on both) and sees each row once (``FINAL``; averages over
``anomaly_scores``, where an exact replay duplicate changes nothing).
Parameters are bound by the driver; times are epoch seconds.

>>> sorted(QUERIES)
['alerts', 'notes', 'series', 'top_errors']
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from core.schemas import ERROR_CODES
from dashboards.status.model import (
    AlertRow,
    Component,
    ComponentRef,
    Note,
    SeriesPoint,
    Snapshot,
    build_incidents,
    component_name,
    component_of,
    component_statuses,
    ordered,
)

log = logging.getLogger("dashboards.status")

DAY_SECONDS = 86_400
# 96 points on a 24-hour chart.
SERIES_BUCKET_SECONDS = 900
VOLUME_DETECTOR = "volume/volume_baseline"
SERVICE_DETECTOR = "server_anomaly/isolation_forest"
ALERT_ROWS_LIMIT = 20_000
TOP_ERRORS = 3
# Never an empty array literal: 18.16 cannot type has([], key).
_NO_ROOM = ""

# Aliases differ from column names: 18.16 resolves an alias equal to a column inside the aggregate.
_CODE_SUMS = ",\n    ".join(f"sumMerge(errors_{code}) AS n_{code}" for code in ERROR_CODES)

QUERIES: dict[str, str] = {
    "alerts": f"""SELECT fingerprint, toUInt32(event_ts) AS event_s, status, scope, key, kind, severity,
    toUInt32(starts_at) AS start_s, toUInt32(ends_at) AS end_s
FROM alerts FINAL
WHERE event_ts >= toDateTime(%(since)s) AND event_ts <= toDateTime(%(until)s)
  AND kind != 'suspected_forgery'
  AND (scope IN ('service', 'cluster', 'platform', 'global') OR (scope = 'room' AND has(%(rooms)s, key)))
ORDER BY event_ts DESC
LIMIT {ALERT_ROWS_LIMIT}""",
    "series": f"""SELECT scope, key, toUInt32(intDiv(toUInt32(window_start), {SERIES_BUCKET_SECONDS}) * {SERIES_BUCKET_SECONDS}) AS t,
    avg(observed) AS observed_avg, avg(baseline) AS baseline_avg
FROM anomaly_scores
WHERE window_start >= toDateTime(%(day_ago)s) AND window_start <= toDateTime(%(until)s)
  AND ((scope IN ('region', 'platform') AND detector = '{VOLUME_DETECTOR}')
    OR (scope = 'room' AND detector = '{VOLUME_DETECTOR}' AND has(%(rooms)s, key))
    OR (scope = 'service' AND detector = '{SERVICE_DETECTOR}'))
GROUP BY scope, key, t
ORDER BY scope, key, t""",
    "top_errors": f"""SELECT scope, key,
    {_CODE_SUMS}
FROM room_health_1h
WHERE bucket >= toDateTime(%(day_ago_hour)s) AND bucket <= toDateTime(%(until)s)
  AND (scope IN ('region', 'platform') OR (scope = 'room' AND has(%(rooms)s, key)))
GROUP BY scope, key""",
    "notes": """SELECT incident_id, note_id, toUInt32(created_at) AS created_s, body
FROM status_notes FINAL
WHERE created_at >= toDateTime(%(since)s)
ORDER BY created_at, note_id""",
}


Rows = Sequence[Sequence[Any]]
RunQuery = Callable[[str, Mapping[str, Any]], Rows]


class SnapshotSource(Protocol):
    """Where a snapshot comes from (ClickHouse in production, a fake in unit tests)."""

    def load(self, now: int) -> Snapshot: ...


def params(now: int, rooms: Mapping[str, str], history_days: int) -> dict[str, Any]:
    # The hourly rollup's buckets start on the hour: the one holding the start of the 24 hours counts.
    return {"since": now - history_days * DAY_SECONDS, "day_ago": now - DAY_SECONDS,
            "day_ago_hour": (now - DAY_SECONDS) // 3600 * 3600, "until": now,
            "rooms": [_NO_ROOM, *sorted(rooms)]}


def assemble(now: int, results: Mapping[str, Rows], rooms: Mapping[str, str], per_kind: int,
             expire_after: int = 0) -> Snapshot:
    """A snapshot from the four queries' rows (pure); ``expire_after``: see ``model.build_incidents``."""
    alert_rows = [AlertRow(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), int(r[7]),
                           int(r[8])) for r in results["alerts"]]
    notes = [Note(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in results["notes"]]
    incidents = build_incidents(alert_rows, notes, rooms, now, expire_after)
    series: dict[ComponentRef, list[SeriesPoint]] = {}
    for scope, key, at, observed, baseline in results["series"]:
        ref = component_of(str(scope), str(key))
        if ref is not None:
            series.setdefault(ref, []).append(SeriesPoint(int(at), float(observed), float(baseline)))
    top: dict[ComponentRef, tuple[tuple[str, float], ...]] = {}
    for row in results["top_errors"]:
        ref = component_of(str(row[0]), str(row[1]))
        if ref is None:
            continue
        counts = sorted(((code, float(n)) for code, n in zip(ERROR_CODES, row[2:], strict=True) if float(n) > 0),
                        key=lambda pair: (-pair[1], pair[0]))
        top[ref] = tuple(counts[:TOP_ERRORS])
    refs = set(series) | set(top) | {ComponentRef("room", room) for room in rooms}
    refs |= {c for i in incidents if i.open for c in i.components}
    chosen = ordered(refs, per_kind)
    statuses = component_statuses(incidents, chosen)
    components = tuple(Component(ref, component_name(ref, rooms), statuses[ref.ref], tuple(series.get(ref, ())),
                                 top.get(ref, ())) for ref in chosen)
    newest = max((point.at + SERIES_BUCKET_SECONDS for points in series.values() for point in points), default=None)
    return Snapshot(as_of=now, components=components, incidents=tuple(incidents), window_start=now - DAY_SECONDS,
                    newest_data=newest)


class ClickHouseSource:
    """Reads a snapshot as the read-only user; counts the queries it sent (the benchmark reports them)."""

    def __init__(self, run_query: RunQuery, rooms: Mapping[str, str], per_kind: int, history_days: int,
                 expire_after: int = 0) -> None:
        self.run_query = run_query
        self.expire_after = expire_after
        self.rooms = dict(rooms)
        self.per_kind = per_kind
        self.history_days = history_days
        self.queries_sent = 0
        self._lock = threading.Lock()

    def load(self, now: int) -> Snapshot:
        bound = params(now, self.rooms, self.history_days)
        results: dict[str, Rows] = {}
        for name, sql in QUERIES.items():
            with self._lock:
                self.queries_sent += 1
            try:
                results[name] = self.run_query(sql, bound)
            except Exception as exc:
                # A server not yet migrated to status_notes still gets its page, without notes.
                if name != "notes":
                    raise
                log.warning("status page: notes not read (%s); run `outagewatch history migrate` to create "
                            "status_notes", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                results[name] = []
        return assemble(now, results, self.rooms, self.per_kind, self.expire_after)


def clickhouse_runner(target: Any, timeout_seconds: float) -> RunQuery:
    """A query function over one clickhouse-driver connection, reconnected after a failure."""
    from history.client import connect

    lock = threading.Lock()
    client: list[Any] = []
    # The server cuts a slow query; the status page has already served the last good page by then.
    execution_limit = max(1, int(timeout_seconds * 2))

    def run(sql: str, bound: Mapping[str, Any]) -> Rows:
        with lock:
            if not client:
                client.append(connect(target, max_execution_time=execution_limit))
            try:
                return list(client[0].execute(sql, dict(bound)))
            except BaseException:
                client.pop().disconnect()
                raise

    return run


def wall_clock() -> int:
    return int(time.time())
