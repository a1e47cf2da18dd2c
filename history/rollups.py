"""Recompute the 1-minute and 1-hour rollups of a time range from ``room_health FINAL``.

The materialized views add every row inserted into ``room_health``; a window
inserted twice (a crash between the INSERT and the Kafka commit, with the
sink's memory of written windows lost) counts twice in the rollups even
though ``room_health FINAL`` shows it once. ``rebuild`` deletes the
affected buckets and re-inserts them from the deduplicated windows.

Run it for a range that is closed (older than window + allowed lateness):
a window the sink inserts into the range while it runs is counted by the
view and by the rebuild.

>>> rebuild_range(1795323630, 1795327230)
(1795323600, 1795330800)
>>> print(rebuild_statements("room_health_1h", 1795323600, 1795330800)[0])
ALTER TABLE room_health_1h DELETE WHERE bucket >= toDateTime(1795323600) AND bucket < toDateTime(1795330800)

On a cluster the DELETE goes to every shard's local table (a Distributed table
takes no mutation); the re-insert goes through the Distributed table, whose
sharding key puts each bucket where the view writes it:

>>> print(rebuild_statements("room_health_1h", 0, 3600, ClusterLayout("c", "ow"))[0][:55])
ALTER TABLE ow.room_health_1h_local ON CLUSTER c DELETE
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from history.migrations import ERROR_CODE_COLUMNS
from history.replicated import ClusterLayout

ROLLUPS: dict[str, str] = {
    "room_health_1m": "toStartOfMinute(window_start)",
    "room_health_1h": "toStartOfHour(window_start)",
}
_SUMS = ("joins", "leaves", "reports", "errors", "error_clients", *ERROR_CODE_COLUMNS)


def rebuild_range(since: int, until: int) -> tuple[int, int]:
    """Widen ``[since, until)`` to whole hours, so every touched bucket of both rollups is recomputed whole."""
    start = since - since % 3600
    end = until if until % 3600 == 0 else until - until % 3600 + 3600
    return start, end


def rebuild_statements(table: str, start: int, end: int, layout: ClusterLayout | None = None) -> list[str]:
    """Delete the buckets of ``[start, end)`` and re-insert them from ``room_health FINAL``."""
    target = table if layout is None else f"{layout.local(table)} ON CLUSTER {layout.cluster}"
    columns = ["bucket", "scope", "key", "listeners_max", "listeners_avg", "windows", *_SUMS]
    states = ["maxState(listeners)", "avgState(listeners)", "countState()", *(f"sumState({c})" for c in _SUMS)]
    return [
        f"ALTER TABLE {target} DELETE WHERE bucket >= toDateTime({start}) AND bucket < toDateTime({end})",
        f"INSERT INTO {table} ({', '.join(columns)})\nSELECT {ROLLUPS[table]} AS bucket, scope, key, "
        + ", ".join(states)
        + f"\nFROM room_health FINAL\nWHERE window_start >= toDateTime({start}) AND window_start < toDateTime({end})"
        "\nGROUP BY bucket, scope, key",
    ]


PENDING_MUTATIONS = ("SELECT count() FROM {mutations} WHERE database = currentDatabase() "
                     "AND table = '{table}' AND is_done = 0")


def pending_mutations(table: str, layout: ClusterLayout | None = None) -> str:
    """The query counting unfinished mutations of ``table``; on a cluster, on one replica of every shard.

    >>> pending_mutations("room_health_1m", ClusterLayout("c", "ow")).split(" WHERE")[0]
    "SELECT count() FROM cluster('c', system, mutations)"
    """
    if layout is None:
        return PENDING_MUTATIONS.format(mutations="system.mutations", table=table)
    return PENDING_MUTATIONS.format(mutations=f"cluster('{layout.cluster}', system, mutations)",
                                    table=f"{table}_local").replace("currentDatabase()", f"'{layout.database}'")


def rebuild(execute: Callable[[str], object], query: Callable[[str], Sequence[Sequence[object]]], since: int,
            until: int, timeout_s: float = 300.0, sleep: Callable[[float], None] = time.sleep,
            layout: ClusterLayout | None = None) -> tuple[int, int]:
    """Rebuild both rollups over ``[since, until)`` widened to hours; returns the range rebuilt.

    ``ALTER ... DELETE`` is an asynchronous mutation; it only touches parts
    that exist when it is issued, so the re-insert is safe right after it,
    and we wait for the mutation so readers never see both old and new rows.
    """
    start, end = rebuild_range(since, until)
    for table in ROLLUPS:
        delete, insert = rebuild_statements(table, start, end, layout)
        execute(delete)
        deadline = time.monotonic() + timeout_s
        while int(str(query(pending_mutations(table, layout))[0][0])) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the DELETE mutation on {table} did not finish in {timeout_s:.0f}s; "
                                   "see system.mutations")
            sleep(0.1)
        execute(insert)
    return start, end
