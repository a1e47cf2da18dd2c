"""What the chaos benchmark counts after the faults: loss request by request, and duplicates as shipped
queries and on-call would see them.

- **lost**: for each request the collector answered 202, the rows it must
  have in ClickHouse (accepted minus sampled out) against the distinct report
  ids of that request stored (``load.request_key``): exact, whatever else
  was stored twice or without an acknowledgement;
- **duplicates visible to the shipped queries**: rows that ``FINAL`` or
  ``argMax`` do not collapse (reports, room_health, alerts), and room-health
  windows counted twice by the rollups the dashboards read for long ranges;
- **duplicate pages**: the same alert event (fingerprint, status, start)
  notified more than once to the webhook.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# Runs one SELECT with bound parameters and returns its rows: the driver on a server, or chdb in the tests.
Rows = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]


def loss_by_request(acked: Iterable[tuple[str, int]], stored: Mapping[str, int]) -> dict[str, int]:
    """Acknowledged rows missing, request by request, and rows stored for requests never acknowledged.

    >>> loss_by_request([("r1", 3), ("r2", 2), ("r2", 2)], {"r1": 3, "r2": 1, "r9": 4})
    {'requests_acknowledged': 2, 'rows_expected': 5, 'rows_stored': 4, 'lost': 1, 'requests_short': 1, 'stored_unacknowledged': 4}
    """
    expected: dict[str, int] = {}
    for key, rows in acked:
        expected[key] = max(rows, expected.get(key, 0))  # a retried body acknowledged twice is one request
    short = {key: rows - stored.get(key, 0) for key, rows in expected.items() if stored.get(key, 0) < rows}
    return {"requests_acknowledged": len(expected), "rows_expected": sum(expected.values()),
            "rows_stored": sum(min(rows, stored.get(key, 0)) for key, rows in expected.items()),
            "lost": sum(short.values()), "requests_short": len(short),
            "stored_unacknowledged": sum(count for key, count in stored.items() if key not in expected)}


def duplicate_pages(notifications: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Webhook bodies (``Alert`` JSON) notified more than once for the same event.

    >>> page = {"fingerprint": "f1", "status": "firing", "starts_at": 10, "key": "room-1"}
    >>> duplicate_pages([page, {**page, "status": "resolved"}, page])
    {'notifications': 3, 'firing_pages': 2, 'duplicates': 1, 'duplicated': ['room-1 firing']}
    """
    keys = Counter((n.get("fingerprint"), n.get("status"), n.get("starts_at")) for n in notifications)
    names = {(n.get("fingerprint"), n.get("status"), n.get("starts_at")): f"{n.get('key')} {n.get('status')}"
             for n in notifications}
    return {"notifications": len(notifications),
            "firing_pages": sum(1 for n in notifications if n.get("status") == "firing"),
            "duplicates": sum(count - 1 for count in keys.values() if count > 1),
            "duplicated": sorted(names[key] for key, count in keys.items() if count > 1)}


def stored_by_request(rows: Rows, prefix: str, key_length: int) -> dict[str, int]:
    """Distinct report ids stored per request key (the first ``key_length`` characters of an id)."""
    found = rows("SELECT substring(report_id, 1, %(length)s) AS request, uniqExact(report_id) FROM reports "
                 "WHERE startsWith(report_id, %(prefix)s) GROUP BY request", {"length": key_length, "prefix": prefix})
    return {str(request): int(count) for request, count in found}


# Each: (what, SQL giving one number). The run has a database of its own, so whole tables are the run's.
_VISIBLE = (
    ("reports_final", "SELECT (SELECT count() FROM reports FINAL) - (SELECT uniqExact(report_id) FROM reports)"),
    ("room_health_final", "SELECT (SELECT count() FROM room_health FINAL) - "
                          "(SELECT uniqExact(scope, key, window_start) FROM room_health)"),
    ("alerts_final", "SELECT (SELECT count() FROM alerts FINAL) - "
                     "(SELECT uniqExact(fingerprint, event_ts, status) FROM alerts)"),
    # Windows the 1-minute rollup counts more often than room_health holds them (a re-inserted window).
    ("rollup_1m_windows", """SELECT sum(rolled - stored) FROM (
    SELECT scope, key, bucket, countMerge(windows) AS rolled FROM room_health_1m GROUP BY scope, key, bucket
) AS rollup ANY INNER JOIN (
    SELECT scope, key, toStartOfMinute(window_start) AS bucket, uniqExact(window_start) AS stored
    FROM room_health GROUP BY scope, key, bucket
) AS raw USING (scope, key, bucket) WHERE rolled > stored"""),
)


def visible_duplicates(rows: Rows) -> dict[str, int]:
    """Rows the shipped queries would count twice (0 each for a clean run), and raw duplicate rows."""
    out = {name: int(rows(sql, {})[0][0] or 0) for name, sql in _VISIBLE}
    out["raw_report_rows_collapsed_by_final"] = int(rows("SELECT count() - uniqExact(report_id) FROM reports",
                                                         {})[0][0])
    return out


def server_rows(target: Any) -> Rows:
    """``Rows`` over the native protocol (a fresh connection per query: the server may have restarted)."""
    from history.client import connect

    def run(sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        client = connect(target)
        try:
            return list(client.execute(sql, params or None))
        finally:
            client.disconnect()

    return run
