"""Columnar inserts into ClickHouse, and finding the rows it refuses.

>>> def insert(table, rows):
...     if any(row[0] < 0 for row in rows):
...         raise ValueError("negative")
>>> insert_isolating_bad_rows(insert, "t", [(1,), (-2,), (3,), (-4,)], is_retryable=lambda exc: False)
[(1, 'ValueError: negative'), (3, 'ValueError: negative')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from history.batch import WindowKey
from history.client import ClickHouseTarget, connect
from history.retry import is_retryable as default_is_retryable
from history.rows import COLUMNS, Row

if TYPE_CHECKING:
    from clickhouse_driver import Client

log = logging.getLogger("history.writer")


class TableWriter(Protocol):
    """What the sink needs from ClickHouse."""

    def insert(self, table: str, rows: Sequence[Row]) -> None: ...

    def recent_windows(self, horizon_seconds: int) -> list[WindowKey]: ...


def insert_isolating_bad_rows(
    insert: Callable[[str, Sequence[Row]], None],
    table: str,
    rows: Sequence[Row],
    is_retryable: Callable[[BaseException], bool] = default_is_retryable,
) -> list[tuple[int, str]]:
    """Insert ``rows``; if the server refuses them for a non-retryable reason,
    split in halves until the refused rows are found.

    Returns ``(index, reason)`` for each refused row; retryable errors
    propagate so the caller can wait and try the whole batch again.
    """
    try:
        insert(table, rows)
        return []
    except Exception as exc:
        if is_retryable(exc):
            raise
        if len(rows) == 1:
            return [(0, describe_error(exc))]
    middle = len(rows) // 2
    refused = insert_isolating_bad_rows(insert, table, rows[:middle], is_retryable)
    refused += [(index + middle, reason)
                for index, reason in insert_isolating_bad_rows(insert, table, rows[middle:], is_retryable)]
    return refused


def describe_error(exc: BaseException) -> str:
    """One line: the server's message without its stack trace.

    >>> from clickhouse_driver.errors import ServerException
    >>> describe_error(ServerException("DB::Exception: Cannot parse input. Stack trace:\\n0. x", code=27))
    'ServerException: Code: 27. DB::Exception: Cannot parse input.'
    """
    text = str(exc).split("Stack trace:")[0]
    return f"{type(exc).__name__}: {' '.join(text.split())[:500]}"


class ClickHouseWriter:
    """The writer user's connection; one INSERT per table per flush, columnar."""

    def __init__(self, target: ClickHouseTarget) -> None:
        self.target = target
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            # On a cluster the tables are Distributed: acknowledge an INSERT only once every shard has its
            # rows (by default the server would queue them on its own disk and forward them later, and the
            # sink would commit Kafka offsets for rows that a lost server takes with it). Plain tables ignore it.
            self._client = connect(self.target, insert_distributed_sync=1)
        return self._client

    def insert(self, table: str, rows: Sequence[Row]) -> None:
        columns = COLUMNS[table]
        # Tuples are columns enough: the driver copies each into its blocks anyway.
        data: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
        try:
            self.client.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", data, columnar=True)
        except Exception:
            # The driver may be mid-packet; a fresh connection is the safe retry.
            self.close()
            raise

    def recent_windows(self, horizon_seconds: int) -> list[WindowKey]:
        """Room-health windows already stored near the newest one (seeds the sink's dedup)."""
        rows = self.client.execute(
            "SELECT scope, key, toUInt32(window_start) FROM room_health "
            "WHERE window_start >= (SELECT max(window_start) FROM room_health) - %(horizon)s",
            {"horizon": int(horizon_seconds)},
        )
        return [(str(scope), str(key), int(start)) for scope, key, start in rows]

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None
